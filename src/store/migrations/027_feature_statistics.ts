import { type Kysely, SqliteAdapter, sql } from "kysely";

/**
 * Planner statistics for the risk list's feature filters (issue 18), PostgreSQL only. A filter on a stored
 * categorical input is `substring(features FROM k FOR 1) = '\xNN'` (src/store/score-features.ts). Without
 * statistics PostgreSQL guesses 0.5% of rows per such condition, so two filters and a band looked like a handful of
 * rows in a million: it scanned and sorted the whole table instead of walking the risk index in order (328 ms p95
 * on a 1M-row run, and growing with every run kept). Expression statistics on byte k give it the real share of each
 * value; with them the same page walks the index and takes under a millisecond.
 *
 * One statistics object per byte, for the first FEATURE_STATISTICS categorical features of a model; a filter on a
 * later byte still works, with the default guess. Expression statistics need PostgreSQL 14; on an older server
 * this migration does nothing. SQLite needs none: its planner takes the index for an ORDER BY … LIMIT.
 */
export const FEATURE_STATISTICS = 32;

export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) return;
  const version = await sql<{ v: string }>`SELECT current_setting('server_version_num') AS v`.execute(db);
  if (Number(version.rows[0]?.v ?? 0) < 140000) return;
  for (let k = 1; k <= FEATURE_STATISTICS; k++)
    await sql.raw(`CREATE STATISTICS score_rows_feature_${k} ON (substring(features FROM ${k} FOR 1)) FROM score_rows`).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) return;
  for (let k = 1; k <= FEATURE_STATISTICS; k++) await sql.raw(`DROP STATISTICS IF EXISTS score_rows_feature_${k}`).execute(db);
}
