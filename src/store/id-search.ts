import { sql } from "kysely";
import type { Store } from "./db.js";
import { scoresOfRun } from "./runs.js";

/**
 * The risk list's id search (migration 026): every id the store has scored, once, in a trigram index, so that
 * "ids containing q" is an index lookup instead of a pass over a run's million rows. A run's ids are added the
 * first time someone searches it (or when the console first reads a complete run); runs never change after they
 * complete, so that is once per run.
 */

/** Trigram indexes answer substrings of at least three characters; shorter ones match too much to help. */
export const MIN_INDEXED_QUERY = 3;

/** Whether a run's ids are in the search index. */
export async function isRunIndexed(store: Store, runId: string): Promise<boolean> {
  return (await store.db.selectFrom("search_indexed_runs").select("run_id").where("run_id", "=", runId).executeTakeFirst()) !== undefined;
}

/** Add a complete run's ids to the search index (once: a second call finds the run recorded and does nothing). */
export async function indexRunIds(store: Store, runId: string): Promise<void> {
  if (await isRunIndexed(store, runId)) return;
  // A run still scoring (or failed) gains or loses rows; only a complete run's ids are final.
  const run = await store.db.selectFrom("score_runs").select("status").where("run_id", "=", runId).executeTakeFirst();
  if (run?.status !== "complete") return;
  await store.db.transaction().execute(async (tx) => {
    if (store.dialect === "sqlite") {
      // The FTS table has no uniqueness of its own: new ids go in first, found by the key table, then the keys.
      await sql`INSERT INTO search_ids_fts (customer_id)
        SELECT s.customer_id FROM scores s WHERE ${scoresOfRun(runId)}
          AND NOT EXISTS (SELECT 1 FROM search_ids k WHERE k.customer_id = s.customer_id)`.execute(tx);
      await sql`INSERT OR IGNORE INTO search_ids (customer_id) SELECT customer_id FROM scores WHERE ${scoresOfRun(runId)}`.execute(tx);
    } else {
      await sql`INSERT INTO search_ids (customer_id) SELECT customer_id FROM scores WHERE ${scoresOfRun(runId)} ON CONFLICT DO NOTHING`.execute(tx);
    }
    await tx
      .insertInto("search_indexed_runs")
      .values({ run_id: runId, indexed_at: new Date().toISOString() })
      .onConflict((oc) => oc.column("run_id").doNothing())
      .execute();
  });
}

/**
 * Ids the store has scored that contain `q` (case-sensitive), at most `limit`; null when the index cannot answer
 * (q too short, or PostgreSQL without pg_trgm, where the LIKE would be a scan of every id ever scored).
 */
export async function idsContaining(store: Store, q: string, limit: number): Promise<string[] | null> {
  if ([...q].length < MIN_INDEXED_QUERY) return null;
  if (store.dialect === "sqlite") {
    // A phrase of the trigram tokenizer is an exact substring match; quotes are doubled inside it.
    const phrase = `"${q.replace(/"/g, '""')}"`;
    const rows = await sql<{ customer_id: string }>`SELECT customer_id FROM search_ids_fts WHERE search_ids_fts MATCH ${phrase} LIMIT ${limit}`.execute(
      store.db,
    );
    return rows.rows.map((r) => r.customer_id);
  }
  if (!(await hasTrigramIndex(store))) return null;
  const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await sql<{ customer_id: string }>`SELECT customer_id FROM search_ids WHERE customer_id LIKE ${pattern} ESCAPE '\\' LIMIT ${limit}`.execute(
    store.db,
  );
  return rows.rows.map((r) => r.customer_id);
}

const trigramKnown = new WeakMap<Store, Promise<boolean>>();

function hasTrigramIndex(store: Store): Promise<boolean> {
  let known = trigramKnown.get(store);
  if (known === undefined) {
    known = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'search_ids_trgm' AND schemaname = current_schema()`
      .execute(store.db)
      .then((r) => (r.rows[0]?.n ?? 0) > 0);
    trigramKnown.set(store, known);
  }
  return known;
}
