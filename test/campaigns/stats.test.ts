import { describe, expect, it } from "vitest";
import { seededRandom } from "../../src/campaigns/random.js";
import { analyzeEffect } from "../../src/campaigns/report.js";
import {
  erfc,
  fisherExact,
  newcombeInterval,
  normalCdf,
  normalQuantile,
  riskRatioInterval,
  sampleSizeTwoProportions,
  twoProportionZTest,
  wilson,
} from "../../src/campaigns/stats.js";

describe("normal distribution", () => {
  it("matches erfc to double precision across its three ranges", () => {
    // Reference values: scipy.special.erfc.
    const cases: [number, number][] = [
      [0.1, 0.8875370839817152],
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028513],
      [2, 0.004677734981047266],
      [3.9, 3.479224859723177e-8],
      [5, 1.5374597944280349e-12],
      [-1, 1.8427007929497148],
    ];
    for (const [x, want] of cases) expect(Math.abs(erfc(x) - want) / want).toBeLessThan(1e-14);
  });

  it("inverts the normal CDF", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 12);
    expect(normalQuantile(0.8)).toBeCloseTo(0.8416212335729143, 12);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 9);
    for (const p of [0.001, 0.3, 0.5, 0.77, 0.999]) expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 14);
  });
});

describe("tests and intervals against published values", () => {
  it("gives Fisher's exact two-sided p like R's fisher.test", () => {
    expect(fisherExact(3, 1, 1, 3)).toBeCloseTo(0.4857142857142857, 12);
    expect(fisherExact(1, 9, 11, 3)).toBeCloseTo(0.00275945618522, 12);
    expect(fisherExact(0, 10, 0, 10)).toBeCloseTo(1, 12);
  });

  it("gives the pooled two-proportion z-test", () => {
    const t = twoProportionZTest(56, 70, 48, 80);
    expect(t.z).toBeCloseTo(2.6501719512585, 10);
    expect(t.pValue).toBeCloseTo(0.008045081368, 10);
  });

  it("reproduces Newcombe's (1998) interval for 56/70 − 48/80: 0.0524 to 0.3339", () => {
    const [lo, hi] = newcombeInterval(56, 70, 48, 80);
    expect(lo).toBeCloseTo(0.0524, 4);
    expect(hi).toBeCloseTo(0.3339, 4);
    const [wl, wh] = wilson(81, 263, 1.959963984540054);
    expect(wl).toBeCloseTo(0.2553, 4);
    expect(wh).toBeCloseTo(0.3662, 4);
  });

  it("gives the Katz risk-ratio interval and refuses it without events", () => {
    const ci = riskRatioInterval(56, 70, 48, 80) as [number, number];
    expect(ci[0]).toBeCloseTo(1.0766, 4);
    expect(ci[1]).toBeCloseTo(1.6512, 4);
    expect(riskRatioInterval(0, 10, 3, 10)).toBeNull();
  });

  it("sizes a two-arm comparison like the textbook: 0.5 vs 0.4 needs 388 per arm", () => {
    expect(sampleSizeTwoProportions(0.5, 0.4)).toEqual({ control: 388, treatment: 388 });
    const uneven = sampleSizeTwoProportions(0.3, 0.25, 9);
    expect(uneven.treatment).toBeGreaterThan(uneven.control * 8.9);
  });
});

function binomial(n: number, p: number, random: () => number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (random() < p) k++;
  return k;
}

describe("effect analysis", () => {
  it("covers the true reduction in about 95% of simulated campaigns", () => {
    const random = seededRandom(2024);
    const runs = 400;
    let covered = 0;
    for (let i = 0; i < runs; i++) {
      const xc = binomial(300, 0.3, random);
      const xt = binomial(2700, 0.22, random);
      const r = analyzeEffect({
        treatment: { arm: "treatment", members: 2700, observed: 2700, churned: xt, observedValue: null },
        control: { arm: "control", members: 300, observed: 300, churned: xc, observedValue: null },
        minEffect: 0.02,
        offerCost: null,
      });
      const [lo, hi] = r.absoluteReductionCi95 as [number, number];
      if (lo <= 0.08 && 0.08 <= hi) covered++;
    }
    // Binomial(400, 0.95) lies in [0.92, 0.975] with probability > 99.5%.
    expect(covered / runs).toBeGreaterThan(0.92);
    expect(covered / runs).toBeLessThan(0.975);
  });

  it("uses Fisher's exact test for small groups and says there is no evidence yet, with the sample needed", () => {
    const r = analyzeEffect({
      treatment: { arm: "treatment", members: 36, observed: 36, churned: 7, observedValue: 3600 },
      control: { arm: "control", members: 4, observed: 4, churned: 2, observedValue: 400 },
      minEffect: 0.02,
      offerCost: 10,
    });
    expect(r.test).toBe("Fisher's exact test");
    expect(r.pValue).toBeCloseTo(fisherExact(7, 29, 2, 2), 12);
    expect(r.verdict).toBe("no_evidence_yet");
    expect(r.message).toMatch(
      /^no evidence yet: 36 treated and 4 control customers have outcomes; detecting a 30\.6% reduction needs about \d+ treated and \d+ control/,
    );
    const needed = sampleSizeTwoProportions(0.5, 0.5 - (0.5 - 7 / 36), 9);
    expect(r.sampleNeeded).toEqual({ ...needed, effect: 0.5 - 7 / 36 });
    expect(r.offerCostTotal).toBe(360);
    expect(r.revenueRetained?.estimate).toBeCloseTo((0.5 - 7 / 36) * 36 * 100, 9);
  });

  it("says no evidence yet when an arm has no outcomes", () => {
    const r = analyzeEffect({
      treatment: { arm: "treatment", members: 90, observed: 0, churned: 0, observedValue: null },
      control: { arm: "control", members: 10, observed: 0, churned: 0, observedValue: null },
      minEffect: 0.02,
      offerCost: null,
    });
    expect(r.verdict).toBe("no_evidence_yet");
    expect(r.pValue).toBeNull();
  });
});
