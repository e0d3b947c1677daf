import { z } from "zod";
import type { Store } from "./db.js";
import { scoresOfRun } from "./runs.js";

/**
 * Performance estimated before labels arrive, one report per score run (written by src/monitoring/estimate.ts's
 * caller, read by the CLI, /metrics and the console). The report column is JSON; this module is the only place
 * that decodes it, and it checks it on the way out.
 */

const interval = z.tuple([z.number(), z.number()]);

export const estimateReportSchema = z.object({
  run_id: z.string(),
  model_name: z.string(),
  model_version: z.string(),
  as_of: z.string(),
  computed_at: z.string(),
  status: z.enum(["ok", "warn", "alert", "untrusted", "insufficient"]),
  reason: z.string(),
  recall_target: z.number(),
  recall_tolerance: z.number(),
  trusted: z.boolean(),
  calibration: z.object({
    trusted: z.boolean(),
    ece: z.number().nullable(),
    ece_noise_p95: z.number().nullable(),
    max_ece: z.number(),
    reference_rows: z.number(),
    reason: z.string(),
  }),
  rows: z.number(),
  threshold: z.number(),
  flagged: z.number(),
  expected_churners: z.number(),
  expected_churn_rate: z.number().nullable(),
  roc_auc: z.number().nullable(),
  recall: z.number().nullable(),
  precision: z.number().nullable(),
  band: z.object({
    simulations: z.number(),
    roc_auc: interval.nullable(),
    recall: interval.nullable(),
    precision: interval.nullable(),
    expected_churners: interval,
  }),
});
export type EstimateReport = z.infer<typeof estimateReportSchema>;

/** A run's distinct probabilities and how many customers got each: all the estimator needs, counted by the database. */
export async function scoreGroups(store: Store, runId: string): Promise<{ probability: number; count: number }[]> {
  const rows = await store.db
    .selectFrom("scores")
    .select(["probability", (eb) => eb.fn.countAll<number>().as("n")])
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .groupBy("probability")
    .execute();
  return rows.map((r) => ({ probability: Number(r.probability), count: Number(r.n) }));
}

/** Store a run's estimate; estimating the run again replaces it. */
export async function saveEstimate(store: Store, report: EstimateReport): Promise<void> {
  const row = {
    run_id: report.run_id,
    model_name: report.model_name,
    model_version: report.model_version,
    as_of: report.as_of,
    rows: report.rows,
    trusted: report.trusted ? 1 : 0,
    status: report.status,
    recall: report.recall,
    precision: report.precision,
    roc_auc: report.roc_auc,
    expected_churners: report.expected_churners,
    report: JSON.stringify(estimateReportSchema.parse(report)),
    computed_at: report.computed_at,
  };
  await store.db
    .insertInto("performance_estimates")
    .values(row)
    .onConflict((oc) =>
      oc.column("run_id").doUpdateSet((eb) => ({
        rows: eb.ref("excluded.rows"),
        trusted: eb.ref("excluded.trusted"),
        status: eb.ref("excluded.status"),
        recall: eb.ref("excluded.recall"),
        precision: eb.ref("excluded.precision"),
        roc_auc: eb.ref("excluded.roc_auc"),
        expected_churners: eb.ref("excluded.expected_churners"),
        report: eb.ref("excluded.report"),
        computed_at: eb.ref("excluded.computed_at"),
      })),
    )
    .execute();
}

function decode(row: { report: string }): EstimateReport {
  return estimateReportSchema.parse(JSON.parse(row.report));
}

export async function getEstimate(store: Store, runId: string): Promise<EstimateReport | undefined> {
  const row = await store.db.selectFrom("performance_estimates").select("report").where("run_id", "=", runId).executeTakeFirst();
  return row === undefined ? undefined : decode(row);
}

/** The newest estimates first, optionally of one model version. */
export async function listEstimates(store: Store, options: { modelVersion?: string; limit?: number } = {}): Promise<EstimateReport[]> {
  let q = store.db.selectFrom("performance_estimates").select("report").orderBy("as_of", "desc").orderBy("computed_at", "desc");
  if (options.modelVersion !== undefined) q = q.where("model_version", "=", options.modelVersion);
  return (await q.limit(options.limit ?? 50).execute()).map(decode);
}

/** The latest estimate of each model version, for /metrics. */
export async function latestEstimatePerVersion(store: Store): Promise<EstimateReport[]> {
  const seen = new Set<string>();
  const out: EstimateReport[] = [];
  for (const r of await listEstimates(store, { limit: 500 })) {
    const key = `${r.model_name}\u0000${r.model_version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}
