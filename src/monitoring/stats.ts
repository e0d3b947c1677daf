/**
 * The statistics drift and performance checks rest on: binning by the bundle's rule, PSI, and the p-values of
 * the two-sample KS and chi-square tests. Small, dependency-free, and tested against published values.
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

/** ln Γ(x) for x > 0 (Lanczos, g = 7; accurate to about 1e-15). */
export function lnGamma(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a): a series below a + 1, a continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - lnGamma(a)));
  }
  // Lentz's method for the continued fraction of Γ(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h);
}

/** P(χ²_df ≥ x). */
export function chiSquareSurvival(x: number, df: number): number {
  if (df <= 0) return 1;
  return gammaQ(df / 2, x / 2);
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
