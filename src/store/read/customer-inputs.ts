import type { Store } from "../db.js";
import { latestScoreWith } from "./customer-reasons.js";

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
  const row = await latestScoreWith(store, customerId, "features");
  if (row === undefined || row.features === null) return null;
  return { runId: row.run_id, modelName: row.model_name, modelVersion: row.model_version, features: new Uint8Array(row.features as Uint8Array) };
}
