import { wilson } from "../campaigns/stats.js";
import type { MonitoringConfig } from "../config.js";
import { classificationMetrics, type LabelledPrediction } from "./performance.js";

/** A model's numbers on the holdout, at its own operating threshold. */
export interface ModelEvaluation {
  version: string;
  threshold: number;
  rows: number;
  positives: number;
  recall: number | null;
  precision: number | null;
  roc_auc: number | null;
  brier: number | null;
}

export interface GateRules extends Pick<MonitoringConfig["gate"], "margin" | "auc_tolerance" | "recall_slack" | "min_positives"> {
  recall_target: number;
}

export interface GateCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface GateDecision {
  decision: "promote" | "refuse";
  reason: string;
  checks: GateCheck[];
  /** The champion precision the challenger was compared with (see `gateDecision`). */
  champion_reference_precision: number | null;
}

/** Score each labelled row and evaluate at the model's threshold. */
export function evaluate(version: string, threshold: number, probabilities: ArrayLike<number>, churned: readonly boolean[]): ModelEvaluation {
  const rows: LabelledPrediction[] = [];
  for (let i = 0; i < churned.length; i++) {
    const p = probabilities[i] as number;
    rows.push({ probability: p, predicted: p >= threshold, churned: churned[i] === true, weight: 1 });
  }
  const m = classificationMetrics(rows);
  return { version, threshold, rows: m.rows, positives: m.positives, recall: m.recall, precision: m.precision, roc_auc: m.roc_auc, brier: m.brier };
}

/**
 * The best precision a model reaches while catching at least `recall` of the churners: its precision had its
 * threshold been set on this holdout for that recall. Null when it never reaches it.
 */
export function precisionAtRecall(probabilities: ArrayLike<number>, churned: readonly boolean[], recall: number): number | null {
  const order = Array.from({ length: churned.length }, (_, i) => i).sort((a, b) => (probabilities[b] as number) - (probabilities[a] as number));
  const positives = churned.filter(Boolean).length;
  if (positives === 0) return null;
  let tp = 0;
  let best: number | null = null;
  for (let k = 0; k < order.length; k++) {
    if (churned[order[k] as number]) tp++;
    // Only cut between distinct scores: a threshold cannot split a tie.
    const next = order[k + 1];
    if (next !== undefined && probabilities[next] === probabilities[order[k] as number]) continue;
    if (tp / positives >= recall) {
      const precision = tp / (k + 1);
      if (best === null || precision > best) best = precision;
    }
  }
  return best;
}

const f = (v: number | null): string => (v === null ? "n/a" : v.toFixed(3));

/** Upper end of the 95% Wilson interval of a model's holdout recall. */
function recallUpper(e: ModelEvaluation): number | null {
  if (e.recall === null || e.positives === 0) return null;
  return wilson(Math.round(e.recall * e.positives), e.positives, 1.959963984540054)[1];
}

/**
 * A model meets the recall target unless the holdout shows it does not: the upper end of its recall's 95%
 * interval must reach target − slack. A point estimate alone would refuse a good challenger on holdout noise
 * (400 churners give recall a standard error of about 0.02).
 */
function meetsRecall(e: ModelEvaluation, floor: number): boolean {
  const upper = recallUpper(e);
  return upper !== null && upper >= floor;
}

/**
 * The promotion gate. The challenger must (1) be judged on enough churners, (2) meet the recall target (see
 * `meetsRecall`), (3) lose at most `auc_tolerance` of ROC AUC, and (4) beat the champion:
 * higher precision by `margin`, or — at equal precision (within `margin`) — higher recall by `margin`.
 * Precision is compared at comparable recall: when the champion itself misses the recall target on the
 * holdout, its precision at its own threshold is bought with missed churners, so the challenger is compared
 * with the champion's best precision at the challenger's recall (`championPrecisionAtRecall`).
 */
export function gateDecision(champion: ModelEvaluation, challenger: ModelEvaluation, rules: GateRules, championPrecisionAtRecall: number | null): GateDecision {
  const checks: GateCheck[] = [];
  const refuse = (reason: string): GateDecision => ({ decision: "refuse", reason, checks, champion_reference_precision: null });
  const enough = challenger.positives >= rules.min_positives;
  checks.push({ name: "holdout_size", passed: enough, detail: `${challenger.positives} churners in the holdout (need ${rules.min_positives})` });
  if (!enough) return refuse(`the holdout has ${challenger.positives} churners, fewer than the ${rules.min_positives} a decision needs`);

  const floor = rules.recall_target - rules.recall_slack;
  const meets = meetsRecall(challenger, floor);
  checks.push({
    name: "recall_target",
    passed: meets,
    detail: `challenger recall ${f(challenger.recall)} (95% upper bound ${f(recallUpper(challenger))}) vs target ${rules.recall_target} − slack ${rules.recall_slack}`,
  });
  if (!meets)
    return refuse(
      `the challenger's recall ${f(challenger.recall)} misses the target ${rules.recall_target}: even its 95% upper bound ${f(recallUpper(challenger))} is below ${f(floor)}`,
    );

  const aucLoss = (champion.roc_auc ?? 0) - (challenger.roc_auc ?? 0);
  const aucOk = challenger.roc_auc !== null && aucLoss <= rules.auc_tolerance;
  checks.push({
    name: "roc_auc",
    passed: aucOk,
    detail: `ROC AUC ${f(challenger.roc_auc)} vs champion ${f(champion.roc_auc)} (may lose ${rules.auc_tolerance})`,
  });
  if (!aucOk)
    return refuse(
      `the challenger loses ${aucLoss.toFixed(3)} of ROC AUC (${f(challenger.roc_auc)} vs ${f(champion.roc_auc)}), more than ${rules.auc_tolerance}`,
    );

  const championMeets = meetsRecall(champion, floor);
  const reference = championMeets ? champion.precision : championPrecisionAtRecall;
  const basis = championMeets
    ? "at its threshold"
    : `at the challenger's recall ${f(challenger.recall)} (its own threshold reaches only ${f(champion.recall)})`;
  const gain = (challenger.precision ?? 0) - (reference ?? 0);
  const precisionWins = gain >= rules.margin;
  checks.push({
    name: "precision",
    passed: precisionWins,
    detail: `precision ${f(challenger.precision)} vs champion ${f(reference)} ${basis}; margin ${rules.margin}`,
  });
  const decided = (reason: string): GateDecision => ({ decision: "promote", reason, checks, champion_reference_precision: reference });
  if (precisionWins) return decided(`higher precision: ${f(challenger.precision)} vs ${f(reference)} ${basis}, recall ${f(challenger.recall)}`);

  const recallGain = (challenger.recall ?? 0) - (champion.recall ?? 0);
  // Own thresholds here: "equal precision" is between the two models as they would serve.
  const ownGain = (challenger.precision ?? 0) - (champion.precision ?? 0);
  const recallWins = Math.abs(ownGain) < rules.margin && recallGain >= rules.margin;
  checks.push({
    name: "recall_at_equal_precision",
    passed: recallWins,
    detail: `recall ${f(challenger.recall)} vs ${f(champion.recall)} at precision within ${rules.margin}`,
  });
  if (recallWins) return decided(`higher recall at equal precision: ${f(challenger.recall)} vs ${f(champion.recall)}`);
  return {
    ...refuse(
      `no gain by the margin ${rules.margin}: precision ${f(challenger.precision)} vs champion ${f(reference)} ${basis}, recall ${f(challenger.recall)} vs ${f(champion.recall)}`,
    ),
    champion_reference_precision: reference,
  };
}
