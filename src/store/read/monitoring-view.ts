import { z } from "zod";
import { addDays } from "../../days.js";
import type { Store } from "../db.js";
import { type EstimateReport, listEstimates } from "../estimates.js";
import { type AlertRow, listAlerts, listDriftReports, listPerformanceReports, type PerformanceReportRow } from "../monitoring.js";

/**
 * The monitoring page's read model: drift per feature over runs, realised and estimated performance side by side,
 * alerts, and the real-time API's latency. The drift report's JSON is decoded and checked here, once.
 */

const findingSchema = z.object({
  feature: z.string(),
  kind: z.enum(["numeric", "categorical", "score", "quarantine"]),
  severity: z.enum(["ok", "warn", "alert"]),
  psi: z.number().nullable(),
  reason: z.string(),
});
const driftReportSchema = z.object({ findings: z.array(findingSchema) });
export type DriftFindingView = z.infer<typeof findingSchema>;

export interface DriftRunView {
  run_id: string;
  as_of: string;
  model_version: string;
  severity: "ok" | "warn" | "alert";
  max_psi: number | null;
  findings: DriftFindingView[];
}

/** Drift reports of the newest runs, oldest first (the order a chart reads them). */
export async function driftHistory(store: Store, runs = 30): Promise<DriftRunView[]> {
  const rows = await listDriftReports(store, runs);
  return rows.reverse().map((r) => ({
    run_id: r.run_id,
    as_of: r.as_of,
    model_version: r.model_version,
    severity: r.severity,
    max_psi: r.max_psi === null ? null : Number(r.max_psi),
    findings: driftReportSchema.parse(JSON.parse(r.report)).findings,
  }));
}

export type Metric = "recall" | "precision" | "roc_auc";
export const METRICS: readonly Metric[] = ["recall", "precision", "roc_auc"];

/** One (model version, month): the realised numbers once labels arrived, the estimate made for the same run, and the error. */
export interface EstimateVsRealised {
  model_version: string;
  month: string;
  run_id: string;
  labels: string;
  labelled: number;
  realised: Record<Metric, number | null>;
  estimated: Record<Metric, number | null> | null;
  /** Estimated − realised per metric; null where either is missing. */
  error: Record<Metric, number | null> | null;
  trusted: boolean | null;
}

export interface PerformanceView {
  /** Estimates of the newest runs, oldest first. */
  estimates: EstimateReport[];
  /** Realised reports (every label policy), newest month first. */
  realised: PerformanceReportRow[];
  comparison: EstimateVsRealised[];
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));

export async function performanceView(store: Store, runs = 60): Promise<PerformanceView> {
  const [estimates, realised] = await Promise.all([listEstimates(store, { limit: runs }), listPerformanceReports(store, 100)]);
  const byRun = new Map(estimates.map((e) => [e.run_id, e]));
  const rows = realised.map((r) => ({ ...r, recall: num(r.recall), precision: num(r.precision), roc_auc: num(r.roc_auc) }));
  const comparison = rows.map((r): EstimateVsRealised => {
    const e = byRun.get(r.run_id);
    const realisedValues = { recall: r.recall, precision: r.precision, roc_auc: r.roc_auc };
    const estimated = e === undefined ? null : { recall: e.recall, precision: e.precision, roc_auc: e.roc_auc };
    const diff = (m: Metric): number | null => {
      const a = estimated?.[m] ?? null;
      const b = realisedValues[m];
      return a === null || b === null ? null : a - b;
    };
    return {
      model_version: r.model_version,
      month: r.month,
      run_id: r.run_id,
      labels: r.labels,
      labelled: r.labelled,
      realised: realisedValues,
      estimated,
      error: estimated === null ? null : { recall: diff("recall"), precision: diff("precision"), roc_auc: diff("roc_auc") },
      trusted: e === undefined ? null : e.trusted,
    };
  });
  return { estimates: [...estimates].reverse(), realised: rows, comparison };
}

export async function recentAlerts(store: Store, days = 30, now: Date = new Date()): Promise<AlertRow[]> {
  return listAlerts(store, { since: addDays(now.toISOString().slice(0, 10), -days), limit: 100 });
}

export interface LatencyDay {
  day: string;
  requests: number;
  p50_ms: number | null;
  p95_ms: number | null;
  max_ms: number | null;
}

/**
 * Server latency of logged predictions per day (the newest `days`, oldest first). Percentiles by rank inside the
 * day, which both dialects can do: the day's rows are counted, then the value at the rank is read in order
 * (an index on created_at keeps each day's read to that day's rows).
 */
export async function latencyByDay(store: Store, days = 7, now: Date = new Date()): Promise<LatencyDay[]> {
  const today = now.toISOString().slice(0, 10);
  const out: LatencyDay[] = [];
  for (let d = days - 1; d >= 0; d--) {
    const day = addDays(today, -d);
    const from = `${day}T00:00:00`;
    const to = `${addDays(day, 1)}T00:00:00`;
    const inDay = store.db.selectFrom("predictions").where("created_at", ">=", from).where("created_at", "<", to);
    const agg = await inDay.select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.max("latency_ms").as("max")]).executeTakeFirst();
    const n = Number(agg?.n ?? 0);
    const at = async (q: number): Promise<number | null> => {
      if (n === 0) return null;
      const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
      const row = await inDay.select("latency_ms").orderBy("latency_ms").limit(1).offset(rank).executeTakeFirst();
      return row === undefined ? null : Number(row.latency_ms);
    };
    out.push({ day, requests: n, p50_ms: await at(0.5), p95_ms: await at(0.95), max_ms: agg?.max === null || agg?.max === undefined ? null : Number(agg.max) });
  }
  return out;
}
