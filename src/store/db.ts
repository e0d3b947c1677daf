import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { DEFAULT_MIGRATION_TABLE, Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import { ChurnopsError } from "../errors.js";
import { redactUrl } from "../redact.js";
import { migrations } from "./migrations/index.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  url: string;
  /**
   * The SQLite connection under Kysely, for the one hot path that needs it (writing millions of scores with a
   * prepared statement); null on PostgreSQL.
   */
  sqlite: SqliteDatabase.Database | null;
  /** The PostgreSQL pool under Kysely, for COPY (the score write path, src/store/runs.ts); null on SQLite. */
  pg: import("pg").Pool | null;
  close(): Promise<void>;
}

/**
 * Open the store named by a URL: `sqlite:///abs/path.db`, `sqlite://relative.db`, `sqlite::memory:`, or
 * `postgres(ql)://…`. Migrations run on open, so every process sees the current schema.
 */
export async function openStore(url: string): Promise<Store> {
  let db: Kysely<Database>;
  let dialect: Dialect;
  let raw: SqliteDatabase.Database | null = null;
  let pgPool: import("pg").Pool | null = null;
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    // Loaded here, not at start-up: a SQLite store never needs the driver.
    const { default: pg } = await import("pg");
    // PostgreSQL returns BIGINT as text by default; counts here fit in a double.
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    pgPool = pool;
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    dialect = "postgres";
  } else if (url.startsWith("sqlite:")) {
    const path = url === "sqlite::memory:" ? ":memory:" : url.replace(/^sqlite:\/\//, "");
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const sqlite = openSqlite(path);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    dialect = "sqlite";
    raw = sqlite;
  } else {
    throw new ChurnopsError("bad_config", `store URL ${redactUrl(url)} is neither sqlite:… nor postgresql://…`, { field: "store_url" });
  }
  try {
    await migrate(db, dialect);
  } catch (err) {
    await db.destroy();
    throw new ChurnopsError("bad_config", `cannot open store ${redactUrl(url)}: ${redactUrl((err as Error).message)}`, { cause: err });
  }
  return { db, dialect, url, sqlite: raw, pg: pgPool, close: () => db.destroy() };
}

/** A SQLite connection with the store's settings (also for threads that open their own connection to it). */
export function openSqlite(path: string): SqliteDatabase.Database {
  const sqlite = new SqliteDatabase(path);
  // WAL lets the API log predictions while a batch run writes scores; NORMAL sync is durable at commit in WAL mode.
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 10000");
  sqlite.pragma("foreign_keys = ON");
  // 64 MiB of page cache instead of SQLite's 2 MiB: the scores table's secondary indexes (by customer; by run and
  // probability) take each chunk's rows in random order, and with the default cache every insert went to disk for
  // its index pages (1M scores: 14.9 s with the default, 10.1 s with this, the writer thread's time nearly all of it).
  sqlite.pragma("cache_size = -65536");
  return sqlite;
}

async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  // Kysely looks for its bookkeeping tables in every schema; pin them to ours, or a store in another schema of
  // the same database (search_path) would be mistaken for this one.
  const schema = dialect === "postgres" ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s : undefined;
  if (await schemaIsCurrent(db, schema)) return;
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, ...(schema === undefined ? {} : { migrationTableSchema: schema }) });
  const { error } = await migrator.migrateToLatest();
  if (error !== undefined) throw error instanceof Error ? error : new Error(String(error));
}

/**
 * Whether the store has run exactly this build's migrations: one query instead of the Migrator's (its tables,
 * its lock, its bookkeeping), which every command paid on every open. Anything else — a new store, a migration
 * to run, one this build does not know — goes through the Migrator, which runs or refuses it.
 */
async function schemaIsCurrent(db: Kysely<Database>, schema: string | undefined): Promise<boolean> {
  const table = schema === undefined ? sql.table(DEFAULT_MIGRATION_TABLE) : sql.table(`${schema}.${DEFAULT_MIGRATION_TABLE}`);
  let applied: string[];
  try {
    applied = (await sql<{ name: string }>`select name from ${table}`.execute(db)).rows.map((r) => r.name);
  } catch {
    // No bookkeeping table yet: a new store.
    return false;
  }
  const known = Object.keys(migrations);
  return applied.length === known.length && known.every((name) => applied.includes(name));
}
