import { type Kysely, SqliteAdapter, sql } from "kysely";

/**
 * Compact scores (issue 21.3). A stored score was ~159 bytes in SQLite and ~215 in PostgreSQL: run id, model
 * name and version and a timestamp on every row, the band as text, and three B-trees (the key, the customer
 * index, the risk list's covering index). Now:
 *
 * - `score_runs.run_key`: a small integer naming the run inside the store (PostgreSQL: a sequence; SQLite: the
 *   next integer, given by a trigger inside the inserting statement, so under SQLite's single writer).
 * - `score_bands`: a dictionary of band labels; a score holds the label's small code.
 * - `score_rows`: (run_key, customer_id) keyed (SQLite: WITHOUT ROWID, the key is the table), probability (a
 *   double, as before: a 4-byte PostgreSQL `real` held the model's float32 outputs exactly but changed the values
 *   other writers and readers store and compare), band code, decision, the reasons (JSON, 016) and `features`:
 *   one byte per categorical feature of the bundle (docs/store.md).
 * - one secondary index, the risk list's own order (018's, on the compact columns). `scores_customer` is gone:
 *   the customer page seeks (run_key, customer_id) per run.
 * - `scores`: a VIEW with the old column names (scored_at is the run's start) and `run_key`, so every reader
 *   stays as it was (a reader of one run adds `scoresOfRun`, src/store/runs.ts, so PostgreSQL seeks the run); INSTEAD OF triggers let an INSERT or DELETE on it reach score_rows (the Spark JDBC writer, tests that
 *   seed a store). The batch scorer writes score_rows directly.
 *
 * Existing scores move over in one statement per dialect, keeping every one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) await upSqlite(db);
  else await upPostgres(db);
}

async function upSqlite(db: Kysely<unknown>): Promise<void> {
  await sql`PRAGMA foreign_keys = OFF`.execute(db);
  try {
    await sql`BEGIN`.execute(db);
    try {
      await sql`ALTER TABLE score_runs ADD COLUMN run_key integer`.execute(db);
      await sql`UPDATE score_runs SET run_key = rowid`.execute(db);
      await sql`CREATE UNIQUE INDEX score_runs_key ON score_runs (run_key)`.execute(db);
      await sql`CREATE TRIGGER score_runs_key_next AFTER INSERT ON score_runs FOR EACH ROW WHEN NEW.run_key IS NULL
        BEGIN UPDATE score_runs SET run_key = (SELECT coalesce(max(run_key), 0) + 1 FROM score_runs) WHERE run_id = NEW.run_id; END`.execute(db);
      await sql`CREATE TABLE score_bands (band_code integer PRIMARY KEY, band text NOT NULL UNIQUE)`.execute(db);
      await sql`CREATE TABLE score_rows (
        run_key integer NOT NULL, customer_id text NOT NULL, probability real NOT NULL, band_code integer NOT NULL,
        decision integer NOT NULL, reasons text, features blob, PRIMARY KEY (run_key, customer_id)) WITHOUT ROWID`.execute(db);
      await sql`INSERT INTO score_bands (band) SELECT DISTINCT band FROM scores ORDER BY band`.execute(db);
      await sql`INSERT INTO score_rows (run_key, customer_id, probability, band_code, decision, reasons, features)
        SELECT r.run_key, s.customer_id, s.probability, b.band_code, s.decision, s.reasons, NULL
        FROM scores s JOIN score_runs r ON r.run_id = s.run_id JOIN score_bands b ON b.band = s.band
        ORDER BY r.run_key, s.customer_id`.execute(db);
      const [before, after] = await Promise.all([count(db, "scores"), count(db, "score_rows")]);
      if (before !== after) throw new Error(`migration 020: ${before} scores, ${after} moved to score_rows`);
      await sql`DROP TABLE scores`.execute(db);
      await sql`CREATE INDEX score_rows_risk ON score_rows (run_key, probability DESC, customer_id, band_code, decision)`.execute(db);
      await sql`CREATE VIEW scores AS ${viewBody}`.execute(db);
      await sql`CREATE TRIGGER scores_insert INSTEAD OF INSERT ON scores FOR EACH ROW BEGIN
        SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: scores.run_id names no score run') WHERE NOT EXISTS (SELECT 1 FROM score_runs WHERE run_id = NEW.run_id);
        INSERT INTO score_bands (band) VALUES (NEW.band) ON CONFLICT (band) DO NOTHING;
        INSERT INTO score_rows (run_key, customer_id, probability, band_code, decision, reasons, features)
          SELECT r.run_key, NEW.customer_id, NEW.probability, b.band_code, NEW.decision, NEW.reasons, NEW.features
          FROM score_runs r, score_bands b WHERE r.run_id = NEW.run_id AND b.band = NEW.band;
        END`.execute(db);
      await sql`CREATE TRIGGER scores_delete INSTEAD OF DELETE ON scores FOR EACH ROW BEGIN
        DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = OLD.run_id) AND customer_id = OLD.customer_id;
        END`.execute(db);
      await sql`COMMIT`.execute(db);
    } catch (err) {
      await sql`ROLLBACK`.execute(db);
      throw err;
    }
  } finally {
    await sql`PRAGMA foreign_keys = ON`.execute(db);
  }
}

const viewBody = sql`SELECT r.run_id AS run_id, s.run_key AS run_key, s.customer_id AS customer_id, s.probability AS probability, b.band AS band,
  s.decision AS decision, r.model_name AS model_name, r.model_version AS model_version, r.started_at AS scored_at,
  s.reasons AS reasons, s.features AS features
  FROM score_rows s JOIN score_runs r ON r.run_key = s.run_key JOIN score_bands b ON b.band_code = s.band_code`;

async function upPostgres(db: Kysely<unknown>): Promise<void> {
  // Kysely runs each PostgreSQL migration in a transaction of its own: all of this or none of it.
  await sql`CREATE SEQUENCE score_run_keys AS integer`.execute(db);
  await sql`ALTER TABLE score_runs ADD COLUMN run_key integer`.execute(db);
  await sql`UPDATE score_runs SET run_key = k.key FROM (SELECT run_id, nextval('score_run_keys')::integer AS key FROM (SELECT run_id FROM score_runs ORDER BY started_at, run_id) o) k WHERE k.run_id = score_runs.run_id`.execute(
    db,
  );
  await sql`ALTER TABLE score_runs ALTER COLUMN run_key SET DEFAULT nextval('score_run_keys')`.execute(db);
  await sql`ALTER TABLE score_runs ALTER COLUMN run_key SET NOT NULL`.execute(db);
  await sql`ALTER SEQUENCE score_run_keys OWNED BY score_runs.run_key`.execute(db);
  await sql`CREATE UNIQUE INDEX score_runs_key ON score_runs (run_key)`.execute(db);
  await sql`CREATE TABLE score_bands (band_code smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, band text NOT NULL UNIQUE)`.execute(db);
  // Fixed-width columns first: no alignment padding between them.
  await sql`CREATE TABLE score_rows (
    run_key integer NOT NULL, band_code smallint NOT NULL, decision smallint NOT NULL, probability double precision NOT NULL,
    customer_id text NOT NULL, reasons text, features bytea, PRIMARY KEY (run_key, customer_id))`.execute(db);
  await sql`INSERT INTO score_bands (band) SELECT DISTINCT band FROM scores ORDER BY band`.execute(db);
  await sql`INSERT INTO score_rows (run_key, probability, band_code, decision, customer_id, reasons, features)
    SELECT r.run_key, s.probability, b.band_code, s.decision, s.customer_id, s.reasons, NULL
    FROM scores s JOIN score_runs r ON r.run_id = s.run_id JOIN score_bands b ON b.band = s.band
    ORDER BY r.run_key, s.customer_id`.execute(db);
  const [before, after] = await Promise.all([count(db, "scores"), count(db, "score_rows")]);
  if (before !== after) throw new Error(`migration 020: ${before} scores, ${after} moved to score_rows`);
  await sql`DROP TABLE scores`.execute(db);
  await sql`CREATE INDEX score_rows_risk ON score_rows (run_key, probability DESC, customer_id, band_code, decision)`.execute(db);
  await sql`CREATE VIEW scores AS ${viewBody}`.execute(db);
  await sql
    .raw(`CREATE FUNCTION scores_view_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE key integer; code smallint;
    BEGIN
      IF TG_OP = 'DELETE' THEN
        DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = OLD.run_id) AND customer_id = OLD.customer_id;
        RETURN OLD;
      END IF;
      SELECT run_key INTO key FROM score_runs WHERE run_id = NEW.run_id;
      IF key IS NULL THEN RAISE EXCEPTION 'insert on scores violates foreign key: no score run %', NEW.run_id USING ERRCODE = 'foreign_key_violation'; END IF;
      SELECT band_code INTO code FROM score_bands WHERE band = NEW.band;
      IF code IS NULL THEN
        -- Only a label not there yet: a conflicting INSERT would still use up a value of the (smallint) identity.
        INSERT INTO score_bands (band) VALUES (NEW.band) ON CONFLICT (band) DO NOTHING;
        SELECT band_code INTO code FROM score_bands WHERE band = NEW.band;
      END IF;
      INSERT INTO score_rows (run_key, probability, band_code, decision, customer_id, reasons, features)
        VALUES (key, NEW.probability, code, NEW.decision, NEW.customer_id, NEW.reasons, NEW.features);
      RETURN NEW;
    END $fn$`)
    .execute(db);
  await sql`CREATE TRIGGER scores_write INSTEAD OF INSERT OR DELETE ON scores FOR EACH ROW EXECUTE FUNCTION scores_view_write()`.execute(db);
}

async function count(db: Kysely<unknown>, table: string): Promise<number> {
  const r = await sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/** Back to 019's table (every score kept; scored_at becomes the run's start, model name and version the run's). */
export async function down(db: Kysely<unknown>): Promise<void> {
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  await sql`CREATE TABLE scores_019 (
    run_id text NOT NULL REFERENCES score_runs (run_id), customer_id text NOT NULL, probability double precision NOT NULL,
    band text NOT NULL, decision integer NOT NULL, model_name text NOT NULL, model_version text NOT NULL, scored_at text NOT NULL,
    reasons text, CONSTRAINT scores_pk PRIMARY KEY (run_id, customer_id))`.execute(db);
  await sql`INSERT INTO scores_019 SELECT run_id, customer_id, probability, band, decision, model_name, model_version, scored_at, reasons FROM scores`.execute(
    db,
  );
  if (sqlite) {
    await sql`DROP VIEW scores`.execute(db);
    await sql`DROP TRIGGER score_runs_key_next`.execute(db);
  } else {
    await sql`DROP VIEW scores`.execute(db);
    await sql`DROP FUNCTION scores_view_write()`.execute(db);
  }
  await sql`DROP TABLE score_rows`.execute(db);
  await sql`DROP TABLE score_bands`.execute(db);
  await sql`DROP INDEX score_runs_key`.execute(db);
  await sql`ALTER TABLE score_runs DROP COLUMN run_key`.execute(db);
  await sql`ALTER TABLE scores_019 RENAME TO scores`.execute(db);
  await sql`CREATE INDEX scores_customer ON scores (customer_id)`.execute(db);
  await sql`CREATE INDEX scores_run_risk ON scores (run_id, probability DESC, customer_id, band, decision, model_version)`.execute(db);
}
