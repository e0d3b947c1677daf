import { describe, expect, it } from "vitest";
import { evaluate, gateDecision, type ModelEvaluation, precisionAtRecall } from "../../src/monitoring/gate.js";

const rules = { recall_target: 0.8, margin: 0.01, auc_tolerance: 0.01, recall_slack: 0, min_positives: 50 };
const model = (over: Partial<ModelEvaluation>): ModelEvaluation => ({
  version: "1",
  threshold: 0.3,
  rows: 2000,
  positives: 500,
  recall: 0.8,
  precision: 0.45,
  roc_auc: 0.8,
  brier: 0.15,
  ...over,
});

describe("promotion gate", () => {
  it("promotes a challenger that meets the recall target with higher precision", () => {
    const d = gateDecision(model({}), model({ version: "2", precision: 0.48, roc_auc: 0.81 }), rules, null);
    expect(d.decision).toBe("promote");
    expect(d.reason).toMatch(/higher precision/);
  });

  it("refuses a worse challenger and says why", () => {
    const lower = gateDecision(model({}), model({ version: "2", precision: 0.43 }), rules, null);
    expect(lower.decision).toBe("refuse");
    expect(lower.reason).toMatch(/no gain by the margin 0.01: precision 0.430 vs champion 0.450/);
    const misses = gateDecision(model({}), model({ version: "2", recall: 0.7, precision: 0.6 }), rules, null);
    expect(misses.decision).toBe("refuse");
    expect(misses.reason).toMatch(/misses the target 0.8/);
    const auc = gateDecision(model({}), model({ version: "2", precision: 0.5, roc_auc: 0.77 }), rules, null);
    expect(auc.decision).toBe("refuse");
    expect(auc.reason).toMatch(/loses 0.030 of ROC AUC/);
    expect(gateDecision(model({}), model({ version: "2", positives: 20, precision: 0.6 }), rules, null).reason).toMatch(/fewer than the 50/);
  });

  it("promotes higher recall at equal precision, and not a gain smaller than the margin", () => {
    expect(gateDecision(model({}), model({ version: "2", recall: 0.85, precision: 0.452 }), rules, null).reason).toMatch(/higher recall at equal precision/);
    expect(gateDecision(model({}), model({ version: "2", recall: 0.805, precision: 0.455 }), rules, null).decision).toBe("refuse");
  });

  it("treats a recall a hair under the target as met when the holdout cannot tell it apart", () => {
    // 400 churners: recall 0.78 has a 95% interval reaching above 0.8.
    const d = gateDecision(model({}), model({ version: "2", positives: 400, recall: 0.78, precision: 0.5 }), rules, null);
    expect(d.checks.find((c) => c.name === "recall_target")?.passed).toBe(true);
    expect(gateDecision(model({}), model({ version: "2", positives: 4000, recall: 0.78, precision: 0.5 }), rules, null).decision).toBe("refuse");
  });

  it("compares with the champion's precision at the challenger's recall when the champion misses the target", () => {
    const champion = model({ recall: 0.5, precision: 0.5, roc_auc: 0.6 });
    const challenger = model({ version: "2", recall: 0.8, precision: 0.46, roc_auc: 0.75 });
    expect(gateDecision(champion, challenger, rules, 0.3).decision).toBe("promote");
    expect(gateDecision(champion, challenger, rules, 0.48).decision).toBe("refuse");
  });

  it("computes holdout metrics and precision at a recall exactly", () => {
    const p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
    const y = [true, false, true, true, false, false, true, false];
    const e = evaluate("1", 0.55, p, y);
    expect(e.recall).toBeCloseTo(3 / 4, 12);
    expect(e.precision).toBeCloseTo(3 / 4, 12);
    // Positives rank above negatives in 11 of 16 pairs.
    expect(e.roc_auc).toBeCloseTo(11 / 16, 12);
    expect(precisionAtRecall(p, y, 0.75)).toBeCloseTo(3 / 4, 12);
    expect(precisionAtRecall(p, y, 1)).toBeCloseTo(4 / 7, 12);
  });
});
