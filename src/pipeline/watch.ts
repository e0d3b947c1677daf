import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { alertSink } from "../monitoring/alerts.js";
import { checkDrift } from "../monitoring/check-drift.js";
import { checkEstimate } from "../monitoring/check-estimate.js";
import type { Severity } from "../monitoring/drift.js";
import { latestBatchMetrics, writeMetricsTextfile } from "../monitoring/metrics.js";
import { checkPerformance } from "../monitoring/performance.js";
import { type RetrainCheck, retrainIfNeeded } from "../monitoring/retrain.js";
import type { Store } from "../store/db.js";

/** What the daily job learned about its own model after scoring; a step that failed says why. */
export interface WatchSummary {
  drift: { severity: Severity; drifted: string[]; alerts: number } | { error: string };
  /** Performance estimated from today's probabilities, before its labels exist. */
  estimate: { status: string; recall: number | null; roc_auc: number | null; alerts: number } | { error: string };
  performance: { reports: number; alerts: number } | { error: string };
  retrain: RetrainCheck | { error: string };
  metricsTextfile: string | null;
}

async function step<T>(log: Logger, name: string, work: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await work();
  } catch (err) {
    const message = (err as Error).message;
    log.error({ event: "daily.watch_failed", step: name, err: message }, `monitoring step ${name} failed`);
    return { error: message };
  }
}

/**
 * The monitoring half of the daily job: drift of today's batch against the bundle's reference profile,
 * performance estimated from today's probabilities, realised performance where labels have arrived, the batch metrics textfile, and retraining through the gate
 * when an alert fired. Each step is isolated: a monitoring failure is reported and logged, and never stops
 * customers from being scored or campaigns from going out. Every step is idempotent (one drift report per run,
 * alerts de-duplicated per day), so a re-run of the same date repeats nothing.
 */
export async function watchAfterScoring(
  deps: { store: Store; config: Config; log: Logger },
  run: { runId: string; date: string; bundleDir: string; retrain?: WatchSummary["retrain"] | undefined },
): Promise<WatchSummary> {
  const { store, config, log } = deps;
  const alerts = alertSink(config, log);
  const drift = await step(log, "drift", async () => {
    // The bundle that scored the run, as loaded (it may be a directory rather than a registered version).
    const r = await checkDrift({ ...deps, alerts }, run.runId, { bundleDir: run.bundleDir });
    return { severity: r.report.severity, drifted: r.report.drifted, alerts: r.alerts.length };
  });
  const estimate = await step(log, "estimate", async () => {
    const r = await checkEstimate({ ...deps, alerts }, run.runId, { bundleDir: run.bundleDir });
    return { status: r.report.status, recall: r.report.recall, roc_auc: r.report.roc_auc, alerts: r.alerts.length };
  });
  const performance = await step(log, "performance", async () => {
    const r = await checkPerformance({ ...deps, alerts });
    return { reports: r.reports.length, alerts: r.alerts.length };
  });
  let metricsTextfile: string | null = null;
  if (config.monitoring.metrics_textfile !== undefined) {
    const path = config.monitoring.metrics_textfile;
    await step(log, "metrics", async () => {
      const metrics = await latestBatchMetrics(store);
      if (metrics !== null) await writeMetricsTextfile(path, metrics);
      metricsTextfile = path;
    });
  }
  // The daily job retrains before scoring (so the day is scored by the model the decision left) and passes it in.
  const retrain = run.retrain ?? (await step(log, "retrain", () => retrainIfNeeded(deps, { date: run.date })));
  return { drift, estimate, performance, retrain, metricsTextfile };
}
