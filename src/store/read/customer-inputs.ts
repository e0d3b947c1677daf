import type { Store } from "../db.js";

/** The categorical inputs stored with a customer's latest score that has them (src/store/score-features.ts). */
export interface StoredInputs {
  runId: string;
  modelName: string;
  modelVersion: string;
  /** One byte per categorical feature of that run's bundle; decode with decodeFeatures. */
  features: Uint8Array;
}

/** Null when none of the customer's scores kept its inputs (scored before migration 020, or by Spark). */
export async function customerInputs(store: Store, customerId: string): Promise<StoredInputs | null> {
  // Runs first, then one key seek per run, as customerReasons (scores have no index by customer alone).
  const row = await store.db
    .selectFrom("score_runs")
    .crossJoin("scores")
    .select(["scores.run_id", "scores.model_name", "scores.model_version", "scores.features"])
    .whereRef("scores.run_id", "=", "score_runs.run_id")
    .where("scores.customer_id", "=", customerId)
    .where("scores.features", "is not", null)
    .orderBy("score_runs.as_of", "desc")
    .orderBy("score_runs.started_at", "desc")
    .limit(1)
    .executeTakeFirst();
  if (row === undefined || row.features === null) return null;
  return { runId: row.run_id, modelName: row.model_name, modelVersion: row.model_version, features: new Uint8Array(row.features as Uint8Array) };
}
