import { type Kysely, SqliteAdapter, sql } from "kysely";

/**
 * A re-run (`score --rerun`) scores into a run of its own that names the run it replaces; only when it completes
 * do its scores take the original's place, in one transaction (src/store/runs.ts). Readers never see a half-done
 * re-run: until then the original keeps every score it had. The natural key (kind, date, model) stays unique
 * among the runs people read, so it becomes a partial unique index that leaves the re-run rows out.
 * Also the retention columns: `score_runs.pruned_at` and an index on `predictions.created_at`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) await rebuildSqlite(db);
  else {
    await db.schema.alterTable("score_runs").addColumn("replaces", "text").execute();
    await db.schema.alterTable("score_runs").dropConstraint("score_runs_natural_key").execute();
  }
  await sql`CREATE UNIQUE INDEX score_runs_natural_key_idx ON score_runs (kind, as_of, model_name, model_version) WHERE replaces IS NULL`.execute(db);
  // Retention (src/store/retention.ts): when a run's scores were removed; predictions are pruned by age.
  await db.schema.alterTable("score_runs").addColumn("pruned_at", "text").execute();
  await db.schema.createIndex("predictions_created").on("predictions").column("created_at").execute();
}

const COLUMNS = [
  "run_id",
  "kind",
  "as_of",
  "model_name",
  "model_version",
  "source",
  "status",
  "started_at",
  "finished_at",
  "rows_read",
  "rows_scored",
  "rows_quarantined",
  "checkpoint_rows",
  "duration_ms",
  "error",
  "lease_owner",
  "lease_expires_at",
  "input",
  "input_fingerprint",
].join(", ");

/**
 * SQLite cannot drop a table constraint: the table is rebuilt (its documented procedure: foreign keys off,
 * copy, drop, rename, check, foreign keys on). Kysely runs SQLite migrations outside a transaction, so the
 * pragma takes effect; the copy itself is one transaction.
 */
async function rebuildSqlite(db: Kysely<unknown>): Promise<void> {
  await sql`PRAGMA foreign_keys = OFF`.execute(db);
  try {
    await sql`BEGIN`.execute(db);
    try {
      await sql`CREATE TABLE score_runs_019 (
        run_id text PRIMARY KEY, kind text NOT NULL, as_of text NOT NULL, model_name text NOT NULL, model_version text NOT NULL,
        source text NOT NULL, status text NOT NULL, started_at text NOT NULL, finished_at text,
        rows_read bigint NOT NULL DEFAULT 0, rows_scored bigint NOT NULL DEFAULT 0, rows_quarantined bigint NOT NULL DEFAULT 0,
        checkpoint_rows bigint NOT NULL DEFAULT 0, duration_ms double precision, error text, lease_owner text, lease_expires_at text,
        input text, input_fingerprint text, replaces text)`.execute(db);
      await sql.raw(`INSERT INTO score_runs_019 (${COLUMNS}) SELECT ${COLUMNS} FROM score_runs`).execute(db);
      await sql`DROP TABLE score_runs`.execute(db);
      await sql`ALTER TABLE score_runs_019 RENAME TO score_runs`.execute(db);
      const broken = await sql`PRAGMA foreign_key_check`.execute(db);
      if (broken.rows.length > 0) throw new Error(`migration 019: ${broken.rows.length} rows refer to missing score runs`);
      await sql`COMMIT`.execute(db);
    } catch (err) {
      await sql`ROLLBACK`.execute(db);
      throw err;
    }
  } finally {
    await sql`PRAGMA foreign_keys = ON`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("predictions_created").execute();
  await sql`DROP INDEX score_runs_natural_key_idx`.execute(db);
  await db.schema.alterTable("score_runs").dropColumn("pruned_at").execute();
  await db.schema.alterTable("score_runs").dropColumn("replaces").execute();
  // The natural key as 001 made it: a table constraint on PostgreSQL; on SQLite a unique index holds the same rule.
  if (db.getExecutor().adapter instanceof SqliteAdapter)
    await sql`CREATE UNIQUE INDEX score_runs_natural_key ON score_runs (kind, as_of, model_name, model_version)`.execute(db);
  else await db.schema.alterTable("score_runs").addUniqueConstraint("score_runs_natural_key", ["kind", "as_of", "model_name", "model_version"]).execute();
}
