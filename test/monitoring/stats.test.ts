// ln Γ now comes from stdlib (inside the incomplete gamma); its reference values are kept as a check of the library.
import lnGamma from "@stdlib/math-base-special-gammaln";
import { describe, expect, it } from "vitest";
import { binIndex, chiSquareSurvival, chiSquareTwoSample, kolmogorovSurvival, ksPValue, ksStatistic, psi } from "../../src/monitoring/stats.js";

describe("monitoring statistics", () => {
  it("bins like numpy searchsorted(side=left): a value equal to an edge falls in the lower bin", () => {
    const edges = [2, 6, 12];
    expect([1, 2, 2.0001, 6, 7, 12, 13].map((x) => binIndex(edges, x))).toEqual([0, 0, 1, 1, 2, 2, 3]);
    expect(binIndex([], 5)).toBe(0);
  });

  it("computes ln Γ at known points", () => {
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(lnGamma(10.5)).toBeCloseTo(13.940625219403763, 10);
  });

  it("matches chi-square critical values from the tables", () => {
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 8);
    expect(chiSquareSurvival(18.307038053275146, 10)).toBeCloseTo(0.05, 8);
    expect(chiSquareSurvival(6.634896601021214, 1)).toBeCloseTo(0.01, 8);
    expect(chiSquareSurvival(2, 2)).toBeCloseTo(Math.exp(-1), 12);
    // Reference values from scipy.stats.chi2.sf.
    expect(chiSquareSurvival(150, 100)).toBeCloseTo(0.0009039320423540184, 12);
    expect(chiSquareSurvival(40, 30)).toBeCloseTo(0.10486428110798468, 12);
    expect(chiSquareSurvival(0.5, 3)).toBeCloseTo(0.9188914116546758, 12);
  });

  it("gives the Kolmogorov distribution's tail at known points", () => {
    expect(kolmogorovSurvival(1.358)).toBeCloseTo(0.05, 3);
    expect(kolmogorovSurvival(1.628)).toBeCloseTo(0.01, 3);
    expect(kolmogorovSurvival(1.0)).toBeCloseTo(0.27, 3);
    expect(kolmogorovSurvival(0.1)).toBe(1);
  });

  it("KS p-value: the same D is significant for large samples and not for small ones", () => {
    expect(ksPValue(0.05, 5000, 5000)).toBeLessThan(1e-4);
    expect(ksPValue(0.05, 50, 50)).toBeGreaterThan(0.9);
    expect(ksStatistic([0.25, 0.25, 0.5], [0.5, 0.25, 0.25])).toBeCloseTo(0.25, 12);
  });

  it("chi-square homogeneity on a 2×2 table matches the textbook value", () => {
    // 2×2 table [[20, 30], [30, 20]]: χ² = 4.0, df 1, p = 0.0455
    const t = chiSquareTwoSample([20, 30], [30, 20]);
    expect(t.statistic).toBeCloseTo(4, 10);
    expect(t.df).toBe(1);
    expect(t.pValue).toBeCloseTo(0.0455, 4);
    expect(chiSquareTwoSample([10, 0, 5], [20, 0, 10]).df).toBe(1);
  });

  it("PSI is zero for equal distributions and matches a hand computation", () => {
    expect(psi([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(psi([0.5, 0.5], [0.7, 0.3])).toBeCloseTo(0.2 * Math.log(0.7 / 0.5) + -0.2 * Math.log(0.3 / 0.5), 12);
    // An empty bucket is floored, not infinite.
    expect(Number.isFinite(psi([0.5, 0.5, 0], [0.45, 0.45, 0.1]))).toBe(true);
  });
});
