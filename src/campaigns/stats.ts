import stdlibErfc from "@stdlib/math-base-special-erfc";

/**
 * The statistics a campaign report needs, tested against published values: the normal distribution (erfc from
 * stdlib), the two-proportion z-test, Fisher's exact test, Newcombe's interval for a difference of
 * proportions, the Katz interval for a risk ratio, and the sample size for comparing two proportions.
 */

/** The complementary error function (stdlib; relative error near double precision across its range). */
export const erfc: (x: number) => number = stdlibErfc;

/** Standard normal cumulative distribution Φ(z). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Upper tail 1 − Φ(z), accurate far into the tail. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * Inverse of Φ: Acklam's rational approximation (relative error < 1.2e-9) refined by one Halley step against
 * the accurate erfc, which brings it to double precision. Kept rather than stdlib's normal quantile, which is off
 * in the tails: at p = 1e-10 it gives −6.361340889697 against scipy's −6.361340902404 (2e-9 relative), and
 * sample sizes and intervals at small α read that tail.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return Number.NEGATIVE_INFINITY;
    if (p === 1) return Number.POSITIVE_INFINITY;
    return Number.NaN;
  }
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

export interface ZTest {
  z: number;
  pValue: number;
}

/** Two-sided two-proportion z-test with the pooled standard error (H0: p1 = p2). */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number): ZTest {
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { z: 0, pValue: 1 };
  const z = (x1 / n1 - x2 / n2) / se;
  return { z, pValue: Math.min(1, 2 * normalSf(Math.abs(z))) };
}

function logFactorials(n: number): Float64Array {
  const table = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) table[i] = (table[i - 1] as number) + Math.log(i);
  return table;
}

/**
 * Two-sided Fisher's exact test for the 2×2 table [[a, b], [c, d]]: the total probability, under fixed margins,
 * of every table no more likely than the one observed (R's `fisher.test` convention, with its 1e-7 relative
 * tolerance for ties).
 */
export function fisherExact(a: number, b: number, c: number, d: number): number {
  const row1 = a + b;
  const col1 = a + c;
  const n = a + b + c + d;
  const lf = logFactorials(n);
  const f = (k: number): number => lf[k] as number;
  const fixed = f(row1) + f(n - row1) + f(col1) + f(n - col1) - f(n);
  const logP = (x: number): number => fixed - f(x) - f(row1 - x) - f(col1 - x) - f(n - row1 - col1 + x);
  const lo = Math.max(0, row1 + col1 - n);
  const hi = Math.min(row1, col1);
  const observed = logP(a);
  let p = 0;
  for (let x = lo; x <= hi; x++) {
    const lp = logP(x);
    if (lp <= observed + 1e-7 * Math.abs(observed) + 1e-12) p += Math.exp(lp);
  }
  return Math.min(1, p);
}

/** Wilson score interval for a proportion x/n. */
export function wilson(x: number, n: number, z: number): [number, number] {
  if (n === 0) return [0, 1];
  const p = x / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * Newcombe's hybrid score interval (his method 10) for p1 − p2: built from the two Wilson intervals, it keeps
 * its coverage with small groups and rates near 0 or 1, where the simple Wald interval does not.
 */
export function newcombeInterval(x1: number, n1: number, x2: number, n2: number, level = 0.95): [number, number] {
  const z = normalQuantile(1 - (1 - level) / 2);
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const [l1, u1] = wilson(x1, n1, z);
  const [l2, u2] = wilson(x2, n2, z);
  const diff = p1 - p2;
  return [diff - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), diff + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)];
}

/** Katz log interval for the risk ratio p1 / p2 (null when a group has no events, where it is undefined). */
export function riskRatioInterval(x1: number, n1: number, x2: number, n2: number, level = 0.95): [number, number] | null {
  if (x1 === 0 || x2 === 0) return null;
  const z = normalQuantile(1 - (1 - level) / 2);
  const logRr = Math.log(x1 / n1 / (x2 / n2));
  const se = Math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2);
  return [Math.exp(logRr - z * se), Math.exp(logRr + z * se)];
}

export interface SampleSize {
  control: number;
  treatment: number;
}

/**
 * Customers needed per arm for a two-sided test at `alpha` to detect control rate `pControl` against treatment
 * rate `pTreatment` with the given power, when the arms are in the ratio treatment : control = `ratio` : 1
 * (Fleiss' formula without continuity correction; for ratio 1, p 0.5 vs 0.4, α 0.05, power 0.8: 388 each).
 */
export function sampleSizeTwoProportions(pControl: number, pTreatment: number, ratio = 1, alpha = 0.05, power = 0.8): SampleSize {
  const delta = Math.abs(pControl - pTreatment);
  if (delta === 0) return { control: Number.POSITIVE_INFINITY, treatment: Number.POSITIVE_INFINITY };
  const za = normalQuantile(1 - alpha / 2);
  const zb = normalQuantile(power);
  const pBar = (pControl + ratio * pTreatment) / (1 + ratio);
  const n =
    (za * Math.sqrt(pBar * (1 - pBar) * (1 + 1 / ratio)) + zb * Math.sqrt(pControl * (1 - pControl) + (pTreatment * (1 - pTreatment)) / ratio)) ** 2 /
    delta ** 2;
  const control = Math.ceil(n - 1e-9);
  return { control, treatment: Math.ceil(control * ratio - 1e-9) };
}
