import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/db.js";
import { type EstimateReport, getEstimate, saveEstimate, scoreGroups } from "../store/estimates.js";
import { resolveRun } from "../store/runs.js";
import { type AlertInput, type AlertSink, type RaisedAlert, raiseAlerts } from "./alerts.js";
import { bundleOfRun } from "./check-drift.js";
import { checkCalibration, estimateMetrics } from "./estimate.js";
import type { PerformanceReport } from "./performance.js";

export interface EstimateDeps {
  store: Store;
  config: Config;
  log: Logger;
  alerts?: AlertSink | undefined;
}

/** Estimate a complete run's performance from its stored probabilities; store the report (replacing an earlier one). */
export async function estimateRun(deps: EstimateDeps, runRef: string, options: { bundleDir?: string | undefined } = {}): Promise<EstimateReport> {
  const { store, config } = deps;
  const run = await resolveRun(store, runRef);
  if (run.status !== "complete") throw new ChurnopsError("conflict", `run ${run.run_id} is ${run.status}; performance is estimated on complete runs`);
  const bundle = await bundleOfRun(config, run, options.bundleDir);
  const settings = config.monitoring.estimate;
  const recallTarget = config.monitoring.performance.recall_target ?? bundle.thresholds.recall_target ?? 0.8;
  const tolerance = config.monitoring.performance.recall_tolerance;
  const calibration = checkCalibration((bundle.reference as { calibration?: unknown }).calibration, { maxEce: settings.max_ece });
  const metrics = estimateMetrics(await scoreGroups(store, run.run_id), bundle.thresholds.operating, {
    simulations: settings.simulations,
    seed: settings.seed,
  });

  let status: EstimateReport["status"];
  let reason: string;
  if (!calibration.trusted) {
    status = "untrusted";
    reason = `estimate not trusted: ${calibration.reason}`;
  } else if (metrics.rows < settings.min_rows || metrics.recall === null) {
    status = "insufficient";
    reason = `${metrics.rows} scored rows (< ${settings.min_rows}): too few for a stable estimate`;
  } else if (metrics.recall < recallTarget - tolerance) {
    status = "alert";
    reason = `estimated recall ${metrics.recall.toFixed(3)} < target ${recallTarget} − tolerance ${tolerance}`;
  } else if (metrics.recall < recallTarget) {
    status = "warn";
    reason = `estimated recall ${metrics.recall.toFixed(3)} below target ${recallTarget}, within tolerance ${tolerance}`;
  } else {
    status = "ok";
    reason = `estimated recall ${metrics.recall.toFixed(3)} ≥ target ${recallTarget}`;
  }
  const report: EstimateReport = {
    run_id: run.run_id,
    model_name: run.model_name,
    model_version: run.model_version,
    as_of: run.as_of,
    computed_at: new Date().toISOString(),
    status,
    reason,
    recall_target: recallTarget,
    recall_tolerance: tolerance,
    trusted: calibration.trusted,
    calibration,
    ...metrics,
  };
  await saveEstimate(store, report);
  deps.log.info(
    { event: "performance.estimated", run_id: run.run_id, status, recall: metrics.recall, roc_auc: metrics.roc_auc, trusted: calibration.trusted },
    "performance estimated",
  );
  return report;
}

/** An untrusted estimate never alerts: its probabilities are known to be off, so its recall would be too. */
export function estimateAlerts(report: EstimateReport): AlertInput[] {
  if (report.status !== "alert" && report.status !== "warn") return [];
  return [
    {
      rule: "performance.estimated_recall",
      severity: report.status,
      subject: `v${report.model_version}`,
      message: `model ${report.model_name} v${report.model_version}, run ${report.run_id}: ${report.reason} (before labels; 95% band ${band(report.band.recall)})`,
      details: { recall: report.recall, band: report.band.recall, roc_auc: report.roc_auc, recall_target: report.recall_target, rows: report.rows },
      modelName: report.model_name,
      modelVersion: report.model_version,
      runId: report.run_id,
    },
  ];
}

function band(b: [number, number] | null): string {
  return b === null ? "-" : `${b[0].toFixed(3)}–${b[1].toFixed(3)}`;
}

/** Estimate a run, store it, and raise its alert on the same de-duplicated path as drift (the CLI and the daily job). */
export async function checkEstimate(
  deps: EstimateDeps,
  runRef: string,
  options: { bundleDir?: string | undefined } = {},
): Promise<{ report: EstimateReport; alerts: RaisedAlert[] }> {
  const report = await estimateRun(deps, runRef, options);
  const alerts = deps.alerts === undefined ? [] : await raiseAlerts(deps.store, estimateAlerts(report), deps.alerts);
  return { report, alerts };
}

/** A realised report beside the estimate of the same run, and how far the estimate was off. */
export interface EstimateComparison {
  model_name: string;
  model_version: string;
  month: string;
  run_id: string;
  labelled: number;
  realised: { recall: number | null; precision: number | null; roc_auc: number | null };
  estimated: { recall: number | null; precision: number | null; roc_auc: number | null; recall_band: [number, number] | null; trusted: boolean } | null;
  /** estimated − realised; null without an estimate or a realised value. */
  error: { recall: number | null; roc_auc: number | null };
  /** Whether realised recall fell inside the estimate's 95% band (false is evidence of concept drift or miscalibration). */
  recall_in_band: boolean | null;
}

const diff = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined ? null : a - b;

/** Realised performance per model version and month next to the estimate made for the same run before labels arrived. */
export async function compareWithRealised(store: Store, reports: readonly PerformanceReport[]): Promise<EstimateComparison[]> {
  const out: EstimateComparison[] = [];
  for (const r of reports) {
    const e = await getEstimate(store, r.run_id);
    const recallBand = e?.band.recall ?? null;
    out.push({
      model_name: r.model_name,
      model_version: r.model_version,
      month: r.month,
      run_id: r.run_id,
      labelled: r.rows,
      realised: { recall: r.recall, precision: r.precision, roc_auc: r.roc_auc },
      estimated: e === undefined ? null : { recall: e.recall, precision: e.precision, roc_auc: e.roc_auc, recall_band: recallBand, trusted: e.trusted },
      error: { recall: diff(e?.recall, r.recall), roc_auc: diff(e?.roc_auc, r.roc_auc) },
      recall_in_band: recallBand === null || r.recall === null ? null : r.recall >= recallBand[0] && r.recall <= recallBand[1],
    });
  }
  return out;
}
