import type { Config } from "../config.js";
import { addDays } from "../days.js";
import type { Logger } from "../log.js";
import { readBundle } from "../model/bundle.js";
import { resolveBundle } from "../model/registry.js";
import type { Store } from "../store/db.js";
import { campaignArmsBetween, labelledScores, monthlyRuns, savePerformanceReport } from "../store/monitoring.js";
import { type AlertInput, type AlertSink, type RaisedAlert, raiseAlerts } from "./alerts.js";

/** One labelled prediction. `weight` is how many customers of the scored population it stands for. */
export interface LabelledPrediction {
  probability: number;
  predicted: boolean;
  churned: boolean;
  weight: number;
}

export interface CalibrationBin {
  lower: number;
  upper: number;
  /** Weighted number of customers in the bin. */
  weight: number;
  mean_predicted: number;
  observed_rate: number;
}

export interface ClassificationMetrics {
  /** Rows with a label, and the weighted population they stand for. */
  rows: number;
  population: number;
  positives: number;
  base_rate: number | null;
  recall: number | null;
  precision: number | null;
  roc_auc: number | null;
  brier: number | null;
  calibration: { ece: number | null; bins: CalibrationBin[] };
}

/**
 * ROC AUC with case weights: the weighted probability that a churner scores above a non-churner (ties count
 * half), computed in one pass over the rows sorted by score.
 */
export function weightedRocAuc(rows: readonly LabelledPrediction[]): number | null {
  const sorted = [...rows].sort((a, b) => a.probability - b.probability);
  let negBelow = 0;
  let pairs = 0;
  let posTotal = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    let pos = 0;
    let neg = 0;
    const p = (sorted[i] as LabelledPrediction).probability;
    while (j < sorted.length && (sorted[j] as LabelledPrediction).probability === p) {
      const r = sorted[j] as LabelledPrediction;
      if (r.churned) pos += r.weight;
      else neg += r.weight;
      j++;
    }
    pairs += pos * (negBelow + 0.5 * neg);
    negBelow += neg;
    posTotal += pos;
    i = j;
  }
  return posTotal > 0 && negBelow > 0 ? pairs / (posTotal * negBelow) : null;
}

/** Recall and precision at the decisions given, ROC AUC, Brier score and equal-width calibration bins (ECE). */
export function classificationMetrics(rows: readonly LabelledPrediction[], calibrationBins = 10): ClassificationMetrics {
  let population = 0;
  let positives = 0;
  let positivesCount = 0;
  let truePos = 0;
  let predictedPos = 0;
  let brier = 0;
  const bins = Array.from({ length: calibrationBins }, (_, k) => ({ lower: k / calibrationBins, upper: (k + 1) / calibrationBins, weight: 0, p: 0, y: 0 }));
  for (const r of rows) {
    const y = r.churned ? 1 : 0;
    population += r.weight;
    positives += r.weight * y;
    positivesCount += y;
    if (r.predicted) {
      predictedPos += r.weight;
      truePos += r.weight * y;
    }
    brier += r.weight * (r.probability - y) ** 2;
    const bin = bins[Math.min(calibrationBins - 1, Math.max(0, Math.floor(r.probability * calibrationBins)))];
    if (bin !== undefined) {
      bin.weight += r.weight;
      bin.p += r.weight * r.probability;
      bin.y += r.weight * y;
    }
  }
  const used = bins.filter((b) => b.weight > 0);
  const ece = population > 0 ? used.reduce((s, b) => s + (b.weight / population) * Math.abs(b.p / b.weight - b.y / b.weight), 0) : null;
  return {
    rows: rows.length,
    population,
    positives: positivesCount,
    base_rate: population > 0 ? positives / population : null,
    recall: positives > 0 ? truePos / positives : null,
    precision: predictedPos > 0 ? truePos / predictedPos : null,
    roc_auc: weightedRocAuc(rows),
    brier: population > 0 ? brier / population : null,
    calibration: {
      ece,
      bins: used.map((b) => ({ lower: b.lower, upper: b.upper, weight: b.weight, mean_predicted: b.p / b.weight, observed_rate: b.y / b.weight })),
    },
  };
}

export type LabelPolicy = "clean" | "all";

/** Which labels a report used, so a reader can judge how clean they are. */
export interface LabelsUsed {
  policy: string;
  labelled: number;
  positives: number;
  /** Scored customers no campaign touched in the window (weight 1). */
  untouched: number;
  /** Control-group members (no offer); each stands for the treated members of its campaign too. */
  control: number;
  control_weight: number | null;
  /** Treated members left out: the offer may have changed their outcome. */
  treated_excluded: number;
  window: { from: string; to: string };
}

export interface PerformanceReport extends ClassificationMetrics {
  model_name: string;
  model_version: string;
  month: string;
  run_id: string;
  recall_target: number;
  status: "ok" | "warn" | "alert" | "insufficient";
  reason: string;
  labels: LabelsUsed;
}

interface Arms {
  treated: Set<string>;
  /** Control member → weight (campaign members / control members). */
  control: Map<string, number>;
}

function armsOf(members: readonly { campaign: string; customer_id: string; arm: "treatment" | "control" }[]): Arms {
  const sizes = new Map<string, { all: number; control: number }>();
  for (const m of members) {
    const s = sizes.get(m.campaign) ?? { all: 0, control: 0 };
    s.all++;
    if (m.arm === "control") s.control++;
    sizes.set(m.campaign, s);
  }
  const treated = new Set(members.filter((m) => m.arm === "treatment").map((m) => m.customer_id));
  const control = new Map<string, number>();
  for (const m of members) {
    if (m.arm !== "control" || treated.has(m.customer_id)) continue;
    const s = sizes.get(m.campaign) as { all: number; control: number };
    control.set(m.customer_id, Math.max(control.get(m.customer_id) ?? 0, s.all / s.control));
  }
  return { treated, control };
}

/**
 * Realised performance of every (model version, score month). Labels are outcomes observed within
 * `horizon_days` after the score date. With the `clean` policy, customers a campaign treated are left out —
 * an offer may have kept them — and control-group members, who got no offer, are weighted up to stand for the
 * treated members of their campaign (inverse probability of being left untreated). What remains estimates the
 * model's performance on the population as if no one had been contacted.
 */
export async function computePerformance(
  store: Store,
  options: {
    horizonDays: number;
    calibrationBins: number;
    minPositives: number;
    tolerance: number;
    labels: LabelPolicy;
    recallTarget: (version: string) => Promise<number>;
    /** Called before each (model version, month) is judged and once at the end, with how many there are in all. */
    onProgress?: ((done: number, total: number) => void) | undefined;
  },
): Promise<PerformanceReport[]> {
  const reports: PerformanceReport[] = [];
  const runs = await monthlyRuns(store);
  for (const [index, run] of runs.entries()) {
    options.onProgress?.(index, runs.length);
    const to = addDays(run.as_of, options.horizonDays);
    const scored = await labelledScores(store, run.run_id, run.as_of, to);
    if (scored.length === 0) continue;
    const arms = armsOf(await campaignArmsBetween(store, run.as_of, to));
    const rows: LabelledPrediction[] = [];
    let untouched = 0;
    let control = 0;
    let treatedExcluded = 0;
    let controlWeight = 0;
    for (const s of scored) {
      let weight = 1;
      if (options.labels === "clean") {
        if (arms.treated.has(s.customer_id)) {
          treatedExcluded++;
          continue;
        }
        const w = arms.control.get(s.customer_id);
        if (w !== undefined) {
          weight = w;
          control++;
          controlWeight += w;
        } else untouched++;
      } else untouched++;
      rows.push({ probability: s.probability, predicted: s.decision === 1, churned: s.churned === 1, weight });
    }
    const metrics = classificationMetrics(rows, options.calibrationBins);
    const target = await options.recallTarget(run.model_version);
    const floor = target - options.tolerance;
    let status: PerformanceReport["status"];
    let reason: string;
    if (metrics.positives < options.minPositives || metrics.recall === null) {
      status = "insufficient";
      reason = `${metrics.positives} labelled churners (< ${options.minPositives}): too few to judge recall`;
    } else if (metrics.recall < floor) {
      status = "alert";
      reason = `recall ${metrics.recall.toFixed(3)} < target ${target} − tolerance ${options.tolerance}`;
    } else if (metrics.recall < target) {
      status = "warn";
      reason = `recall ${metrics.recall.toFixed(3)} below target ${target}, within tolerance ${options.tolerance}`;
    } else {
      status = "ok";
      reason = `recall ${metrics.recall.toFixed(3)} ≥ target ${target}`;
    }
    reports.push({
      ...metrics,
      model_name: run.model_name,
      model_version: run.model_version,
      month: run.as_of.slice(0, 7),
      run_id: run.run_id,
      recall_target: target,
      status,
      reason,
      labels: {
        policy:
          options.labels === "all"
            ? "all labelled customers, treated ones included (offers may have changed their outcomes)"
            : control > 0 || treatedExcluded > 0
              ? "untreated customers; control group reweighted for the treated it stands for"
              : "all labelled customers (no campaign touched them)",
        labelled: rows.length,
        positives: metrics.positives,
        untouched,
        control,
        control_weight: control > 0 ? controlWeight / control : null,
        treated_excluded: treatedExcluded,
        window: { from: run.as_of, to },
      },
    });
  }
  options.onProgress?.(runs.length, runs.length);
  return reports;
}

export interface PerformanceDeps {
  store: Store;
  config: Config;
  log: Logger;
  alerts?: AlertSink | undefined;
}

export interface PerformanceResult {
  labels: LabelPolicy;
  tolerance: number;
  reports: PerformanceReport[];
  alerts: RaisedAlert[];
}

/** The recall a version promised: the config's target, else its bundle's; cached per call. */
function recallTargets(config: Config, log: Logger): (version: string) => Promise<number> {
  const cache = new Map<string, number>();
  return async (version) => {
    const configured = config.monitoring.performance.recall_target;
    if (configured !== null) return configured;
    const hit = cache.get(version);
    if (hit !== undefined) return hit;
    const { json } = await readBundle((await resolveBundle(config, version)).bundlePath);
    const target = json.thresholds.recall_target ?? null;
    if (target === null) log.warn({ event: "performance.no_recall_target", version }, "the bundle names no recall target; judging against 0.8");
    cache.set(version, target ?? 0.8);
    return target ?? 0.8;
  };
}

export function performanceAlerts(reports: readonly PerformanceReport[]): AlertInput[] {
  return reports
    .filter((r) => r.status === "alert" || r.status === "warn")
    .map((r) => ({
      rule: "performance.recall",
      severity: r.status === "alert" ? "alert" : "warn",
      subject: `v${r.model_version} ${r.month}`,
      message: `model ${r.model_name} v${r.model_version}, scores of ${r.month}: ${r.reason} (${r.labels.labelled} labels: ${r.labels.policy})`,
      details: { recall: r.recall, precision: r.precision, roc_auc: r.roc_auc, recall_target: r.recall_target, labels: r.labels },
      modelName: r.model_name,
      modelVersion: r.model_version,
      runId: r.run_id,
    }));
}

/** Compute, store and alert on realised performance (the CLI's `monitor performance` and the daily job). */
export async function checkPerformance(
  deps: PerformanceDeps,
  options: { labels?: LabelPolicy; onProgress?: ((done: number, total: number) => void) | undefined } = {},
): Promise<PerformanceResult> {
  const p = deps.config.monitoring.performance;
  const labels = options.labels ?? "clean";
  const reports = await computePerformance(deps.store, {
    horizonDays: p.horizon_days,
    calibrationBins: p.calibration_bins,
    minPositives: p.min_positives,
    tolerance: p.recall_tolerance,
    labels,
    recallTarget: recallTargets(deps.config, deps.log),
    onProgress: options.onProgress,
  });
  const computedAt = new Date().toISOString();
  for (const r of reports)
    await savePerformanceReport(deps.store, {
      model_name: r.model_name,
      model_version: r.model_version,
      month: r.month,
      labels,
      run_id: r.run_id,
      labelled: r.rows,
      recall: r.recall,
      precision: r.precision,
      roc_auc: r.roc_auc,
      report: JSON.stringify(r),
      computed_at: computedAt,
    });
  // Only clean labels may raise an alert: with treated customers in, a working offer would look like lost recall.
  const alerts = deps.alerts === undefined || labels !== "clean" ? [] : await raiseAlerts(deps.store, performanceAlerts(reports), deps.alerts);
  deps.log.info({ event: "performance.checked", reports: reports.length, alerts: alerts.length }, "realised performance computed");
  return { labels, tolerance: p.recall_tolerance, reports, alerts };
}
