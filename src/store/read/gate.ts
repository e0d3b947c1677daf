import { z } from "zod";
import type { Store } from "../db.js";
import { listGateDecisions } from "../monitoring.js";

/** The promotion gate's decisions as the models page shows them: both models' holdout numbers and each check, decoded once here. */

const evaluationSchema = z.object({
  version: z.string(),
  threshold: z.number(),
  rows: z.number(),
  positives: z.number(),
  recall: z.number().nullable(),
  precision: z.number().nullable(),
  roc_auc: z.number().nullable(),
  brier: z.number().nullable(),
});

const checkSchema = z.object({ name: z.string(), passed: z.boolean(), detail: z.string() });

export const gateViewSchema = z.object({
  id: z.string(),
  decided_at: z.string(),
  champion_version: z.string(),
  challenger_version: z.string(),
  decision: z.enum(["promote", "refuse"]),
  reason: z.string(),
  trigger: z.string(),
  holdout_rows: z.number(),
  promoted: z.boolean(),
  champion: evaluationSchema,
  challenger: evaluationSchema,
  checks: z.array(checkSchema),
});
export type GateView = z.infer<typeof gateViewSchema>;

/** The newest gate decisions of a model, decoded and checked. */
export async function gateHistory(store: Store, modelName: string, limit = 20): Promise<GateView[]> {
  const rows = await listGateDecisions(store, { modelName, limit });
  return rows.map((r) => {
    const challenger = JSON.parse(r.challenger_metrics) as { checks?: unknown };
    return gateViewSchema.parse({
      id: r.id,
      decided_at: r.decided_at,
      champion_version: r.champion_version,
      challenger_version: r.challenger_version,
      decision: r.decision,
      reason: r.reason,
      trigger: r.trigger,
      holdout_rows: r.holdout_rows,
      promoted: r.promoted === 1,
      champion: JSON.parse(r.champion_metrics),
      challenger,
      checks: challenger.checks ?? [],
    });
  });
}
