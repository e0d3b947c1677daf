import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Gauge, Registry } from "prom-client";
import type { Store } from "../store/db.js";
import { getEstimate, latestEstimatePerVersion } from "../store/estimates.js";
import { listAlerts, listDriftReports, listPerformanceReports } from "../store/monitoring.js";
import { resolveRun } from "../store/runs.js";

/**
 * Prometheus metrics of batch runs: a textfile for node_exporter's textfile collector after each run, and the
 * same gauges (read from the store at scrape time) for the API server's /metrics.
 */
export interface BatchRunMetrics {
  runId: string;
  kind: string;
  modelName: string;
  modelVersion: string;
  rowsRead: number;
  rowsScored: number;
  rowsQuarantined: number;
  durationMs: number;
  /** Largest PSI over the input features (null: drift not checked). */
  maxFeaturePsi: number | null;
  /** Epoch seconds when the run finished. */
  finishedAt: number;
}

interface BatchGauges {
  rows: Gauge<"kind" | "outcome">;
  duration: Gauge<"kind">;
  psi: Gauge<"kind">;
  model: Gauge<"kind" | "name" | "version">;
  finished: Gauge<"kind">;
}

function batchGauges(registry: Registry, refresh?: () => Promise<void>): BatchGauges {
  const registers = [registry];
  // prom-client calls `collect` of every gauge on a scrape, concurrently: each waits for the same refresh.
  const collect = refresh === undefined ? {} : { collect: refresh };
  const gauges: BatchGauges = {
    rows: new Gauge({
      name: "churnops_batch_rows",
      help: "Rows of the last batch run by outcome (read, scored, quarantined)",
      labelNames: ["kind", "outcome"],
      registers,
      ...collect,
    }),
    duration: new Gauge({ name: "churnops_batch_duration_seconds", help: "Wall time of the last batch run", labelNames: ["kind"], registers, ...collect }),
    psi: new Gauge({
      name: "churnops_batch_max_feature_psi",
      help: "Largest PSI of an input feature in the last checked batch",
      labelNames: ["kind"],
      registers,
      ...collect,
    }),
    model: new Gauge({
      name: "churnops_batch_model_info",
      help: "Model that scored the last batch run (value 1)",
      labelNames: ["kind", "name", "version"],
      registers,
      ...collect,
    }),
    finished: new Gauge({
      name: "churnops_batch_last_finished_timestamp_seconds",
      help: "When the last batch run finished",
      labelNames: ["kind"],
      registers,
      ...collect,
    }),
  };
  return gauges;
}

function setBatch(g: BatchGauges, m: BatchRunMetrics): void {
  const kind = m.kind;
  g.rows.set({ kind, outcome: "read" }, m.rowsRead);
  g.rows.set({ kind, outcome: "scored" }, m.rowsScored);
  g.rows.set({ kind, outcome: "quarantined" }, m.rowsQuarantined);
  g.duration.set({ kind }, m.durationMs / 1000);
  if (m.maxFeaturePsi !== null) g.psi.set({ kind }, m.maxFeaturePsi);
  g.model.reset();
  g.model.set({ kind, name: m.modelName, version: m.modelVersion }, 1);
  g.finished.set({ kind }, m.finishedAt);
}

/** The Prometheus text exposition of one batch run. */
export async function batchMetricsText(m: BatchRunMetrics): Promise<string> {
  const registry = new Registry();
  setBatch(batchGauges(registry), m);
  return registry.metrics();
}

/** Write the textfile atomically (temp file + rename), so the collector never reads half a file. */
export async function writeMetricsTextfile(path: string, m: BatchRunMetrics): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, await batchMetricsText(m));
  await rename(tmp, path);
}

/** The metrics of the latest complete run in the store (with its drift report's largest PSI when checked). */
export async function latestBatchMetrics(store: Store): Promise<BatchRunMetrics | null> {
  let run: Awaited<ReturnType<typeof resolveRun>>;
  try {
    run = await resolveRun(store, "latest");
  } catch {
    return null;
  }
  const drift = (await listDriftReports(store, 20)).find((d) => d.run_id === run.run_id);
  return {
    runId: run.run_id,
    kind: run.kind,
    modelName: run.model_name,
    modelVersion: run.model_version,
    rowsRead: Number(run.rows_read),
    rowsScored: Number(run.rows_scored),
    rowsQuarantined: Number(run.rows_quarantined),
    durationMs: Number(run.duration_ms ?? 0),
    maxFeaturePsi: drift?.max_psi ?? null,
    finishedAt: run.finished_at === null ? 0 : Date.parse(run.finished_at) / 1000,
  };
}

/**
 * Add the monitoring gauges to a server's registry (the API's /metrics): the last batch run's rows, duration,
 * largest PSI and model, today's alerts by severity, estimated performance per model version and realised
 * performance with the estimation error per version and month, read from the store when Prometheus scrapes.
 */
export function registerMonitoringMetrics(registry: Registry, store: Store): void {
  let pending: { at: number; done: Promise<void> } | null = null;
  // One store read per scrape, shared by every gauge's collect (and by scrapes less than a second apart).
  const refresh = (): Promise<void> => {
    if (pending === null || Date.now() - pending.at > 1000) pending = { at: Date.now(), done: load() };
    return pending.done;
  };
  const alerts = new Gauge({
    name: "churnops_alerts_today",
    help: "Monitoring alerts raised today (UTC), by severity",
    labelNames: ["severity"],
    registers: [registry],
    collect: refresh,
  });
  const gauges = batchGauges(registry, refresh);
  // Gauges filled from the store on a scrape, sharing its one read.
  const scraped = <L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> =>
    new Gauge({ name, help, labelNames, registers: [registry], collect: refresh });
  const estimated = scraped(
    "churnops_estimated_performance",
    "Performance of each model version's latest score run estimated from its calibrated probabilities, before labels",
    ["model_version", "metric"],
  );
  const trusted = scraped("churnops_estimated_performance_trusted", "1 when the model version's calibration makes its estimates trustworthy", [
    "model_version",
  ]);
  const realised = scraped("churnops_realised_performance", "Realised performance per model version and score month, from ingested outcomes (clean labels)", [
    "model_version",
    "month",
    "metric",
  ]);
  const error = scraped("churnops_estimation_error", "Estimated minus realised performance of the same score run, once its labels arrived", [
    "model_version",
    "month",
    "metric",
  ]);
  async function loadPerformance(): Promise<void> {
    for (const g of [estimated, trusted, realised, error]) g.reset();
    for (const e of await latestEstimatePerVersion(store)) {
      trusted.set({ model_version: e.model_version }, e.trusted ? 1 : 0);
      for (const metric of ["recall", "precision", "roc_auc"] as const) {
        const v = e[metric];
        if (v !== null) estimated.set({ model_version: e.model_version, metric }, v);
      }
    }
    for (const r of await listPerformanceReports(store)) {
      if (r.labels !== "clean") continue;
      const e = await getEstimate(store, r.run_id);
      for (const metric of ["recall", "precision", "roc_auc"] as const) {
        const v = r[metric];
        if (v === null) continue;
        realised.set({ model_version: r.model_version, month: r.month, metric }, v);
        const est = e?.[metric];
        if (est !== null && est !== undefined) error.set({ model_version: r.model_version, month: r.month, metric }, est - v);
      }
    }
  }
  async function load(): Promise<void> {
    await loadPerformance();
    const m = await latestBatchMetrics(store);
    if (m !== null) setBatch(gauges, m);
    const today = await listAlerts(store, { since: new Date().toISOString().slice(0, 10), limit: 10_000 });
    alerts.set({ severity: "warn" }, today.filter((a) => a.severity === "warn").length);
    alerts.set({ severity: "alert" }, today.filter((a) => a.severity === "alert").length);
  }
}
