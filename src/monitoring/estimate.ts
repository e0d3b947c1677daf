import binomial from "@stdlib/random-base-binomial";
import { z } from "zod";

/**
 * Performance estimated from calibrated probabilities alone, before any label exists (confidence-based
 * performance estimation, as NannyML's CBPE does). If the probabilities are calibrated and the relation between
 * inputs and churn has not changed, a customer scored p churns with probability p: the expected confusion matrix
 * at the operating threshold, and the expected ROC curve, follow from the scores themselves. Concept drift breaks
 * the second assumption and the estimate cannot see it; realised performance catches that once labels arrive.
 */

/** One distinct score of a run and how many customers got it (tree models give few distinct scores). */
export interface ScoreGroup {
  probability: number;
  count: number;
}

export type Interval = [number, number];

export interface EstimatedMetrics {
  rows: number;
  threshold: number;
  /** Customers at or above the threshold. */
  flagged: number;
  expected_churners: number;
  expected_churn_rate: number | null;
  roc_auc: number | null;
  recall: number | null;
  precision: number | null;
  /**
   * Where the realised metric would fall, 95% of the time, if the assumptions hold: labels drawn as
   * Bernoulli(p) for every customer of this run, `simulations` times. It is the sampling error of the realised
   * metric, so a realised value outside it is evidence that an assumption broke.
   */
  band: {
    simulations: number;
    roc_auc: Interval | null;
    recall: Interval | null;
    precision: Interval | null;
    expected_churners: Interval;
  };
}

export interface EstimateOptions {
  simulations?: number;
  seed?: number;
}

/** Sort by probability ascending and merge equal probabilities (the store may give them in any order). */
export function normaliseGroups(groups: readonly ScoreGroup[]): ScoreGroup[] {
  const merged = new Map<number, number>();
  for (const g of groups) if (g.count > 0) merged.set(g.probability, (merged.get(g.probability) ?? 0) + g.count);
  return [...merged].map(([probability, count]) => ({ probability, count })).sort((a, b) => a.probability - b.probability);
}

interface Tally {
  auc: number | null;
  recall: number | null;
  precision: number | null;
  churners: number;
}

/**
 * Metrics of one labelling: positives[g] of group g's customers churned. ROC AUC counts a tie between a churner
 * and a non-churner as half, the way the realised AUC in performance.ts does.
 */
function tally(groups: readonly ScoreGroup[], positives: ArrayLike<number>, threshold: number): Tally {
  let negBelow = 0;
  let pairs = 0;
  let posTotal = 0;
  let flaggedPos = 0;
  let flagged = 0;
  for (let g = 0; g < groups.length; g++) {
    const { probability, count } = groups[g] as ScoreGroup;
    const pos = positives[g] as number;
    const neg = count - pos;
    pairs += pos * (negBelow + 0.5 * neg);
    negBelow += neg;
    posTotal += pos;
    if (probability >= threshold) {
      flagged += count;
      flaggedPos += pos;
    }
  }
  return {
    auc: posTotal > 0 && negBelow > 0 ? pairs / (posTotal * negBelow) : null,
    recall: posTotal > 0 ? flaggedPos / posTotal : null,
    precision: flagged > 0 ? flaggedPos / flagged : null,
    churners: posTotal,
  };
}

function interval(values: number[]): Interval | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))] as number;
  return [at(0.025), at(0.975)];
}

/**
 * The expected metrics of a run at the operating threshold, and their sampling band. The point estimates are the
 * metrics of the expected confusion matrix (each customer counts p as a churner and 1 − p as not), as in CBPE.
 */
export function estimateMetrics(groupsIn: readonly ScoreGroup[], threshold: number, options: EstimateOptions = {}): EstimatedMetrics {
  const groups = normaliseGroups(groupsIn);
  const expected = groups.map((g) => g.count * g.probability);
  const point = tally(groups, expected, threshold);
  const rows = groups.reduce((s, g) => s + g.count, 0);
  const flagged = groups.filter((g) => g.probability >= threshold).reduce((s, g) => s + g.count, 0);

  const simulations = options.simulations ?? 200;
  const draw = binomial.factory({ seed: (options.seed ?? 20_201) >>> 0 });
  const aucs: number[] = [];
  const recalls: number[] = [];
  const precisions: number[] = [];
  const churners: number[] = [];
  const positives = new Float64Array(groups.length);
  for (let s = 0; s < simulations; s++) {
    for (let g = 0; g < groups.length; g++) {
      const { probability, count } = groups[g] as ScoreGroup;
      positives[g] = probability <= 0 ? 0 : probability >= 1 ? count : draw(count, probability);
    }
    const t = tally(groups, positives, threshold);
    if (t.auc !== null) aucs.push(t.auc);
    if (t.recall !== null) recalls.push(t.recall);
    if (t.precision !== null) precisions.push(t.precision);
    churners.push(t.churners);
  }
  return {
    rows,
    threshold,
    flagged,
    expected_churners: point.churners,
    expected_churn_rate: rows > 0 ? point.churners / rows : null,
    roc_auc: point.auc,
    recall: point.recall,
    precision: point.precision,
    band: {
      simulations,
      roc_auc: interval(aucs),
      recall: interval(recalls),
      precision: interval(precisions),
      expected_churners: interval(churners) ?? [0, 0],
    },
  };
}

/** The bundle's reliability table on held-out rows (`reference.calibration`, written by the trainer). */
export const referenceCalibrationSchema = z.object({
  source: z.string().optional(),
  n_rows: z.number().int().min(0),
  bins: z.array(
    z.object({
      lower: z.number().min(0).max(1),
      upper: z.number().min(0).max(1),
      n: z.number().int().min(0),
      mean_predicted: z.number().min(0).max(1),
      observed_rate: z.number().min(0).max(1),
    }),
  ),
  ece: z.number().min(0).max(1),
});
export type ReferenceCalibration = z.infer<typeof referenceCalibrationSchema>;

export interface CalibrationCheck {
  trusted: boolean;
  /** Expected calibration error on the reference (held-out) rows, or null when the bundle has no table. */
  ece: number | null;
  /** The ECE a perfectly calibrated model would exceed only 5% of the time on a reference this size. */
  ece_noise_p95: number | null;
  max_ece: number;
  reference_rows: number;
  reason: string;
}

function eceOf(bins: readonly { n: number; mean: number; rate: number }[], total: number): number {
  return bins.reduce((s, b) => s + (b.n / total) * Math.abs(b.mean - b.rate), 0);
}

/**
 * Whether estimates from this model's probabilities can be trusted: its reference ECE must be at most `maxEce`,
 * or no larger than what sampling noise alone gives a perfectly calibrated model on that many rows (a small test
 * split has a noisy ECE). A bundle without a reliability table is never trusted.
 */
export function checkCalibration(reference: unknown, options: { maxEce: number; simulations?: number; seed?: number }): CalibrationCheck {
  const parsed = referenceCalibrationSchema.safeParse(reference);
  if (!parsed.success || parsed.data.n_rows === 0)
    return {
      trusted: false,
      ece: null,
      ece_noise_p95: null,
      max_ece: options.maxEce,
      reference_rows: 0,
      reason: "the bundle has no calibration reference (reference.calibration); retrain with this version of churnops to get one",
    };
  const ref = parsed.data;
  const total = ref.bins.reduce((s, b) => s + b.n, 0);
  const ece = eceOf(
    ref.bins.map((b) => ({ n: b.n, mean: b.mean_predicted, rate: b.observed_rate })),
    total,
  );
  const draw = binomial.factory({ seed: (options.seed ?? 7_919) >>> 0 });
  const noise: number[] = [];
  for (let s = 0; s < (options.simulations ?? 1000); s++) {
    noise.push(
      eceOf(
        ref.bins.map((b) => ({ n: b.n, mean: b.mean_predicted, rate: b.n > 0 ? draw(b.n, b.mean_predicted) / b.n : 0 })),
        total,
      ),
    );
  }
  const p95 = (interval(noise) as Interval)[1];
  const trusted = ece <= options.maxEce || ece <= p95;
  return {
    trusted,
    ece,
    ece_noise_p95: p95,
    max_ece: options.maxEce,
    reference_rows: total,
    reason: trusted
      ? `calibrated on ${total} held-out rows: ECE ${ece.toFixed(3)} (limit ${options.maxEce}; noise alone gives up to ${p95.toFixed(3)})`
      : `not calibrated: ECE ${ece.toFixed(3)} on ${total} held-out rows exceeds ${options.maxEce} and the ${p95.toFixed(3)} that sampling noise explains; estimates from its probabilities would be biased`,
  };
}
