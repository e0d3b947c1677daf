import { type Kysely, SqliteAdapter, sql } from "kysely";

/**
 * The risk list's text search on customer ids (issue 18): a substring of the id, case-sensitive. Scanning a run's
 * rows for it costs a pass over a million index entries per page (110–180 ms in SQLite, 1.2 s in PostgreSQL), so
 * every id the store has scored is kept once in a trigram index: FTS5's trigram tokenizer in SQLite, pg_trgm's
 * GIN operator class in PostgreSQL. One row per customer, not per score, so the index does not grow with the
 * number of runs. `search_indexed_runs` records which runs' ids are in it (src/store/id-search.ts fills both).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("search_indexed_runs")
    .addColumn("run_id", "text", (c) => c.primaryKey())
    .addColumn("indexed_at", "text", (c) => c.notNull())
    .execute();
  if (db.getExecutor().adapter instanceof SqliteAdapter) {
    await sql`CREATE TABLE search_ids (customer_id TEXT PRIMARY KEY) WITHOUT ROWID`.execute(db);
    await sql`CREATE VIRTUAL TABLE search_ids_fts USING fts5(customer_id, tokenize = 'trigram case_sensitive 1')`.execute(db);
    return;
  }
  await db.schema
    .createTable("search_ids")
    .addColumn("customer_id", "text", (c) => c.primaryKey())
    .execute();
  // pg_trgm ships with PostgreSQL and is a trusted extension (any user who may create objects in the database
  // can add it). Where it cannot be added, the search still works, as a scan; it is tried in a savepoint so a
  // refusal does not abort the migration.
  await sql`SAVEPOINT churnops_trgm`.execute(db);
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public`.execute(db);
    const found = await sql<{
      schema: string;
    }>`SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`.execute(db);
    const schema = found.rows[0]?.schema ?? "public";
    await sql`CREATE INDEX search_ids_trgm ON search_ids USING gin (customer_id ${sql.id(schema)}.gin_trgm_ops)`.execute(db);
    await sql`RELEASE SAVEPOINT churnops_trgm`.execute(db);
  } catch {
    await sql`ROLLBACK TO SAVEPOINT churnops_trgm`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) await sql`DROP TABLE search_ids_fts`.execute(db);
  await db.schema.dropTable("search_ids").execute();
  await db.schema.dropTable("search_indexed_runs").execute();
}
