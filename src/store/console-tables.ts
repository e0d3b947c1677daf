import type { Kysely } from "kysely";
import type { Store } from "./db.js";
import type { Database } from "./schema.js";

/**
 * Tables the console adds (migration 012); kept beside, not inside, the shared `Database` interface. Type aliases,
 * not interfaces: `withTables` needs their implicit index signature.
 */
export type ConsoleUsersTable = {
  name: string;
  role: "viewer" | "operator" | "admin";
  password_hash: string;
  created_at: string;
};

export type ConsoleSessionsTable = {
  token_hash: string;
  user_name: string;
  created_at: string;
  expires_at: string;
};

/** One operator/admin action; `details` is JSON text. */
export type ConsoleAuditTable = {
  id: string;
  at: string;
  user_name: string;
  role: string;
  action: string;
  subject: string;
  details: string;
};

export type ConsoleTables = {
  console_users: ConsoleUsersTable;
  console_sessions: ConsoleSessionsTable;
  console_audit: ConsoleAuditTable;
};

/** The store's database seen with the console's tables too. */
export function consoleDb(store: Store): Kysely<Database & ConsoleTables> {
  return store.db.withTables<ConsoleTables>();
}
