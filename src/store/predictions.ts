import type { Store } from "./db.js";
import type { PredictionsTable } from "./schema.js";

/** One logged API prediction, as the `predictions` table holds it. */
export type PredictionRecord = PredictionsTable;

const COLUMNS = [
  "id",
  "request_id",
  "customer_id",
  "variant",
  "model_name",
  "model_version",
  "probability",
  "band",
  "decision",
  "latency_ms",
  "shadow",
  "created_at",
] as const satisfies readonly (keyof PredictionsTable)[];

/**
 * Rows one insert takes at most: PostgreSQL binds at most 65,535 parameters per statement (12 per row), so a batch
 * of this many is one INSERT there and one transaction on SQLite.
 */
export const MAX_INSERT_ROWS = 5000;

/**
 * The predictions insert (the only one): a function that stores one batch atomically, all of its rows or none.
 * On SQLite one prepared statement serves the life of the connection (Kysely would build and prepare one per
 * batch), run in one transaction per batch; it is prepared at the first write, so a store that refuses it fails
 * that write (and the caller retries), not whoever asked for the inserter. On PostgreSQL a batch is one INSERT.
 */
export function predictionInserter(store: Store): (rows: readonly PredictionRecord[]) => Promise<void> {
  const sqlite = store.sqlite;
  const tooMany = (n: number): Error => new RangeError(`${n} predictions in one insert; at most ${MAX_INSERT_ROWS}`);
  if (sqlite === null) {
    return async (rows) => {
      if (rows.length > MAX_INSERT_ROWS) throw tooMany(rows.length);
      if (rows.length > 0) await store.db.insertInto("predictions").values(rows).execute();
    };
  }
  let all: ((rows: readonly PredictionRecord[]) => void) | null = null;
  return async (rows) => {
    if (rows.length > MAX_INSERT_ROWS) throw tooMany(rows.length);
    if (all === null) {
      const insert = sqlite.prepare(`INSERT INTO predictions (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((c) => `@${c}`).join(", ")})`);
      all = sqlite.transaction((batch: readonly PredictionRecord[]) => {
        for (const row of batch) insert.run(row);
      });
    }
    all(rows);
  };
}
