import gammainc from "@stdlib/math-base-special-gammainc";

/**
 * The statistics drift and performance checks rest on: binning by the bundle's rule, PSI, and the p-values of
 * the two-sample KS and chi-square tests, tested against published values. The incomplete gamma function comes
 * from stdlib; the asymptotic Kolmogorov distribution stays here (a short alternating series) because stdlib's
 * KS test is the one-sample test with its exact small-n distribution, not the two-sample asymptotic one used here.
 */

/** Floor for a bucket's share inside PSI's logarithm: an empty bucket then counts as rare, not impossible. */
export const PSI_FLOOR = 1e-4;

/** The bin a value falls in: `count(e < x for e in edges)` (numpy searchsorted, side="left"; docs/bundle.md). */
export function binIndex(edges: readonly number[], x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((edges[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Shares of a count vector (all zeros when the total is zero). */
export function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/**
 * Population stability index of `actual` against `expected` (both share vectors over the same buckets):
 * Σ (a − e) · ln(a / e), with shares floored at PSI_FLOOR. 0.1 is the customary "worth a look", 0.25 "shifted".
 */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i] ?? 0, PSI_FLOOR);
    const a = Math.max(actual[i] ?? 0, PSI_FLOOR);
    total += (a - e) * Math.log(a / e);
  }
  return total;
}

/** Largest gap between the cumulative distributions of two share vectors over ordered bins (binned KS D). */
export function ksStatistic(expected: readonly number[], actual: readonly number[]): number {
  let ce = 0;
  let ca = 0;
  let d = 0;
  for (let i = 0; i < expected.length; i++) {
    ce += expected[i] ?? 0;
    ca += actual[i] ?? 0;
    d = Math.max(d, Math.abs(ce - ca));
  }
  return d;
}

/**
 * P-value of a two-sample Kolmogorov–Smirnov statistic `d` from samples of n1 and n2 values: the asymptotic
 * Kolmogorov distribution with Stephens' small-sample correction (Numerical Recipes, probks). On binned or
 * tied data the test is conservative, which suits an alarm.
 */
export function ksPValue(d: number, n1: number, n2: number): number {
  if (n1 <= 0 || n2 <= 0) return 1;
  const en = Math.sqrt((n1 * n2) / (n1 + n2));
  const lambda = (en + 0.12 + 0.11 / en) * d;
  return kolmogorovSurvival(lambda);
}

/** Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²). */
export function kolmogorovSurvival(lambda: number): number {
  if (lambda < 0.2) return 1;
  let sum = 0;
  let sign = 1;
  let previous = 0;
  for (let j = 1; j <= 100; j++) {
    const term = sign * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) <= 1e-10 * Math.abs(sum) || Math.abs(term) <= 1e-12 * previous) break;
    previous = Math.abs(term);
    sign = -sign;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** P(χ²_df ≥ x): the regularized upper incomplete gamma Q(df/2, x/2), from stdlib. */
export function chiSquareSurvival(x: number, df: number): number {
  if (df <= 0) return 1;
  if (x <= 0) return 1;
  return gammainc(x / 2, df / 2, true, true);
}

export interface ChiSquareTest {
  statistic: number;
  df: number;
  pValue: number;
}

/**
 * Pearson's chi-square test of homogeneity for two samples given as counts over the same buckets (a 2 × k
 * table). Buckets empty in both samples are left out; df = (used buckets − 1).
 */
export function chiSquareTwoSample(countsA: readonly number[], countsB: readonly number[]): ChiSquareTest {
  const na = countsA.reduce((s, v) => s + v, 0);
  const nb = countsB.reduce((s, v) => s + v, 0);
  const n = na + nb;
  if (na <= 0 || nb <= 0) return { statistic: 0, df: 0, pValue: 1 };
  let statistic = 0;
  let used = 0;
  for (let i = 0; i < countsA.length; i++) {
    const a = countsA[i] ?? 0;
    const b = countsB[i] ?? 0;
    const column = a + b;
    if (column <= 0) continue;
    used++;
    const ea = (column * na) / n;
    const eb = (column * nb) / n;
    statistic += (a - ea) ** 2 / ea + (b - eb) ** 2 / eb;
  }
  const df = Math.max(0, used - 1);
  return { statistic, df, pValue: chiSquareSurvival(statistic, df) };
}
