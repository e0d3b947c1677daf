import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { z } from "zod";
import { ChurnopsError } from "../errors.js";
import { consoleDb } from "./console-tables.js";
import type { Store } from "./db.js";

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

export const ROLES = ["viewer", "operator", "admin"] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** What a role may do, in order: each role can do everything the one before it can. */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export const userSchema = z.object({ name: z.string(), role: roleSchema, created_at: z.string() });
export type User = z.infer<typeof userSchema>;

const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** OWASP's scrypt floor (N=2^17, r=8, p=1): 128 MiB per hash, about a tenth of a second. */
const KDF = { N: 2 ** 17, r: 8, p: 1, keylen: 32 };
const MAX_MEM = 256 * 1024 * 1024;

function checkName(name: string): void {
  if (!USER_NAME.test(name)) {
    throw new ChurnopsError("bad_input", `user name ${JSON.stringify(name)}: expected 1-64 letters, digits or . _ @ -`, { field: "name" });
  }
}

/** `scrypt$N$r$p$salt$hash` (base64): the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, KDF.keylen, { N: KDF.N, r: KDF.r, p: KDF.p, maxmem: MAX_MEM });
  return ["scrypt", KDF.N, KDF.r, KDF.p, salt.toString("base64"), hash.toString("base64")].join("$");
}

async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split("$");
  if (kind !== "scrypt" || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = await scryptAsync(password, Buffer.from(salt, "base64"), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: MAX_MEM });
  return timingSafeEqual(actual, expected);
}

// A user that does not exist costs the same scrypt as a wrong password, so timing does not tell names apart.
let decoy: Promise<string> | null = null;

export async function addUser(store: Store, name: string, role: Role, password: string, now: Date = new Date()): Promise<User> {
  checkName(name);
  if (password.length < 8) throw new ChurnopsError("bad_input", "password: expected at least 8 characters", { field: "password" });
  const db = consoleDb(store);
  const existing = await db.selectFrom("console_users").select("name").where("name", "=", name).executeTakeFirst();
  if (existing !== undefined) throw new ChurnopsError("conflict", `user ${name} exists already (remove it first to change it)`, { field: "name" });
  const row = { name, role, password_hash: await hashPassword(password), created_at: now.toISOString() };
  await db.insertInto("console_users").values(row).execute();
  return { name, role, created_at: row.created_at };
}

export async function listUsers(store: Store): Promise<User[]> {
  const rows = await consoleDb(store).selectFrom("console_users").select(["name", "role", "created_at"]).orderBy("name").execute();
  return rows.map((r) => userSchema.parse(r));
}

/** Removes the user and every session it has: a cookie it signed in with stops working at once. */
export async function removeUser(store: Store, name: string): Promise<void> {
  const removed = await consoleDb(store)
    .transaction()
    .execute(async (tx) => {
      await tx.deleteFrom("console_sessions").where("user_name", "=", name).execute();
      return tx.deleteFrom("console_users").where("name", "=", name).executeTakeFirst();
    });
  if (Number(removed.numDeletedRows) === 0) throw new ChurnopsError("not_found", `no user ${name} (see \`churnops users list\`)`, { field: "name" });
}

/** The user when the password is theirs; null otherwise (no hint which part was wrong). */
export async function checkPassword(store: Store, name: string, password: string): Promise<User | null> {
  const row = await consoleDb(store).selectFrom("console_users").selectAll().where("name", "=", name).executeTakeFirst();
  if (row === undefined) {
    decoy ??= hashPassword("decoy-password");
    await passwordMatches(password, await decoy);
    return null;
  }
  return (await passwordMatches(password, row.password_hash)) ? userSchema.parse(row) : null;
}

function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A new session for the user; returns the token the cookie carries (the store keeps only its hash). */
export async function createSession(store: Store, name: string, ttlMs: number, now: Date = new Date()): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  await consoleDb(store)
    .insertInto("console_sessions")
    .values({ token_hash: tokenHash(token), user_name: name, created_at: now.toISOString(), expires_at: new Date(now.getTime() + ttlMs).toISOString() })
    .execute();
  return token;
}

/** The user a session token belongs to, if the session is unexpired and the user still exists. */
export async function sessionUser(store: Store, token: string, now: Date = new Date()): Promise<User | null> {
  const row = await consoleDb(store)
    .selectFrom("console_sessions as s")
    .innerJoin("console_users as u", "u.name", "s.user_name")
    .select(["u.name", "u.role", "u.created_at"])
    .where("s.token_hash", "=", tokenHash(token))
    .where("s.expires_at", ">", now.toISOString())
    .executeTakeFirst();
  return row === undefined ? null : userSchema.parse(row);
}

export async function endSession(store: Store, token: string): Promise<void> {
  await consoleDb(store).deleteFrom("console_sessions").where("token_hash", "=", tokenHash(token)).execute();
}
