import { z } from "zod";
import type { Store } from "../db.js";
import { scoresOfRun } from "../runs.js";

/**
 * A customer's stored reasons (migration 016): what `churnops score --reasons N` (or `spark-score --reasons N`)
 * kept with each score, decoded and checked. The console's customer page and risk list read this; nothing
 * else parses scores.reasons.
 */
export const storedReasonSchema = z.object({
  feature: z.string(),
  label: z.string(),
  value: z.union([z.number(), z.string(), z.null()]),
  contribution: z.number(),
  text: z.string(),
});
export type StoredReason = z.infer<typeof storedReasonSchema>;

const storedReasonsSchema = z.array(storedReasonSchema);

export interface CustomerReasons {
  runId: string;
  modelVersion: string;
  probability: number;
  /** Highest first; empty when no feature raised this customer's risk. */
  reasons: StoredReason[];
}

/** Decode one scores.reasons cell; null for scores made without reasons. A malformed cell is a store fault. */
export function decodeReasons(cell: string | null | undefined, where: string): StoredReason[] | null {
  if (cell === null || cell === undefined) return null;
  const parsed = storedReasonsSchema.safeParse(JSON.parse(cell));
  if (!parsed.success) throw new Error(`scores.reasons of ${where} is not a list of reasons: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** A customer's latest score (by run date, then start) whose `column` is set: what the customer page shows. */
export async function latestScoreWith(store: Store, customerId: string, column: "reasons" | "features") {
  // Runs first, then one key seek per run (scores have no index by customer alone, migration 020).
  return store.db
    .selectFrom("score_runs")
    .crossJoin("scores")
    .select(["scores.run_id", "scores.model_name", "scores.model_version", "scores.probability", "scores.reasons", "scores.features"])
    .whereRef("scores.run_id", "=", "score_runs.run_id")
    .where("scores.customer_id", "=", customerId)
    .where(`scores.${column}`, "is not", null)
    .orderBy("score_runs.as_of", "desc")
    .orderBy("score_runs.started_at", "desc")
    .limit(1)
    .executeTakeFirst();
}

/** The reasons stored with a customer's latest score that has them (null when none of their scores has). */
export async function customerReasons(store: Store, customerId: string): Promise<CustomerReasons | null> {
  const row = await latestScoreWith(store, customerId, "reasons");
  if (row === undefined) return null;
  const reasons = decodeReasons(row.reasons, `customer ${customerId} in run ${row.run_id}`) ?? [];
  return { runId: row.run_id, modelVersion: row.model_version, probability: Number(row.probability), reasons };
}

/** Ids per query: under both databases' bound-parameter limits. */
const IDS_PER_QUERY = 1000;

/**
 * The stored reasons of some customers of one run, by primary key (campaign plans: the members' reasons go into
 * their messages and choose their offers; the risk list and its export: a page of ids read from the list's
 * covering index, which does not hold the reasons). A customer scored without reasons maps to null; one the run
 * did not score is absent.
 */
export async function runReasons(store: Store, runId: string, customerIds: readonly string[]): Promise<Map<string, StoredReason[] | null>> {
  const out = new Map<string, StoredReason[] | null>();
  for (let i = 0; i < customerIds.length; i += IDS_PER_QUERY) {
    const rows = await store.db
      .selectFrom("scores")
      .select(["customer_id", "reasons"])
      .where("run_id", "=", runId)
      .where(scoresOfRun(runId))
      .where("customer_id", "in", customerIds.slice(i, i + IDS_PER_QUERY))
      .execute();
    for (const r of rows) out.set(r.customer_id, decodeReasons(r.reasons, `customer ${r.customer_id} in run ${runId}`));
  }
  return out;
}

/** The same, keeping only the customers whose score has reasons. */
export async function reasonsOf(store: Store, runId: string, customerIds: readonly string[]): Promise<Map<string, StoredReason[]>> {
  const out = new Map<string, StoredReason[]>();
  for (const [id, reasons] of await runReasons(store, runId, customerIds)) if (reasons !== null) out.set(id, reasons);
  return out;
}
