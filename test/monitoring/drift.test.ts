import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readBundle } from "../../src/model/bundle.js";
import { ChurnModel } from "../../src/model/runtime.js";
import { checkDrift } from "../../src/monitoring/check-drift.js";
import { assessDrift, BatchProfiler } from "../../src/monitoring/drift.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore } from "../../src/store/db.js";
import { getDriftReport, listAlerts } from "../../src/store/monitoring.js";
import { storeTargets } from "../helpers/stores.js";
import { quietLog, recordingSink, synth, testConfig, workdir } from "./helpers.js";

const fixture = inject("fixture");
const THRESHOLDS = { psi_warn: 0.1, psi_alert: 0.25, p_value: 0.01, quarantine_warn: 0.02, quarantine_alert: 0.1 };
let model: ChurnModel;
let stable: string;
let shifted: string;

beforeAll(async () => {
  model = await ChurnModel.load(fixture.bundleDir);
  const dir = workdir();
  // Same generator as the training data, another seed: no drift. Then monthly charges up by 20 (about 0.9 sd).
  stable = synth(fixture, join(dir, "stable.parquet"), ["--rows", "2000", "--seed", "101"]);
  shifted = synth(fixture, join(dir, "shifted.parquet"), ["--rows", "2000", "--seed", "102", "--drift-feature", "monthly_charges", "--drift-shift", "20"]);
});
afterAll(async () => {
  await model.close();
});

describe("drift decisions on counts", () => {
  it("a large batch with a trivial shift stays ok: the decision is by effect size, not by p-value", async () => {
    const { json: bundle } = await readBundle(fixture.bundleDir);
    const ref = bundle.reference.features.contract_type;
    if (ref?.kind !== "categorical") throw new Error("fixture has no categorical contract_type");
    // One million rows, shares moved by a point or less: PSI stays far below the warn level.
    const n = 1_000_000;
    const shares = Object.entries(ref.freqs).map(([c, f], i) => [c, f + (i === 0 ? 0.01 : -0.005)] as const);
    const profiler = new BatchProfiler(bundle);
    const columns = new Map<string, unknown[]>(profiler.columns.map((c) => [c, []]));
    const size = 10_000;
    for (const [c, f] of shares) for (let i = 0; i < Math.round(f * size); i++) columns.get("contract_type")?.push(c);
    const filled = columns.get("contract_type")?.length ?? 0;
    for (const name of profiler.columns) if (name !== "contract_type") columns.set(name, new Array(filled).fill(null));
    for (let k = 0; k < n / size; k++) profiler.add(columns, filled);
    const summary = assessDrift({
      bundle,
      profile: profiler.profile(),
      scoreBins: bundle.reference.score.freqs.map((f) => f * n),
      rowsRead: n,
      rowsQuarantined: 0,
      thresholds: THRESHOLDS,
    });
    const contract = summary.findings.find((f) => f.feature === "contract_type");
    expect(contract?.psi).toBeLessThan(0.01);
    expect(contract?.severity).toBe("ok");
  });

  it("counts unseen categories in their own bucket and names them", async () => {
    const { json: bundle } = await readBundle(fixture.bundleDir);
    const profiler = new BatchProfiler(bundle);
    const rows = 1000;
    const col = (v: unknown) => new Array(rows).fill(v);
    const columns = new Map<string, unknown[]>(profiler.columns.map((c) => [c, col(null)]));
    columns.set("payment_method", [...col("credit_card").slice(0, 800), ...col("crypto").slice(0, 200)]);
    profiler.add(columns, rows);
    const summary = assessDrift({
      bundle,
      profile: profiler.profile(),
      scoreBins: bundle.reference.score.freqs.map((f) => f * rows),
      rowsRead: rows,
      rowsQuarantined: 200,
      thresholds: THRESHOLDS,
    });
    const payment = summary.findings.find((f) => f.feature === "payment_method");
    expect(payment?.unseen_share).toBeCloseTo(0.2, 10);
    expect(payment?.unseen_examples).toEqual({ crypto: 200 });
    expect(payment?.severity).toBe("alert");
    expect(summary.findings.find((f) => f.feature === "quarantined_share")?.severity).toBe("alert");
  });
});

describe.each(storeTargets)("drift of score runs on $name", (target) => {
  it("finds no drift in a batch from the training distribution, and names the one shifted feature in another", async () => {
    const url = await target.fresh();
    const store = await openStore(url);
    try {
      const config = testConfig(fixture, url);
      const sink = recordingSink();
      const deps = { store, config, log: quietLog(), alerts: sink };
      const base = { model, kind: "daily" as const, store, chunkSize: 1000, badRows: "quarantine" as const };
      const calm = await scoreBatch({ ...base, source: { data: stable }, asOf: "2026-03-01" });
      const { report: calmReport, alerts: calmAlerts } = await checkDrift(deps, calm.runId, { bundleDir: fixture.bundleDir });
      expect(calmReport.rows_profiled).toBe(2000);
      expect(calmReport.findings.filter((f) => f.severity === "alert")).toEqual([]);
      expect(calmAlerts.filter((a) => a.severity === "alert")).toEqual([]);
      expect(calmReport.max_feature_psi).toBeLessThan(0.1);

      const moved = await scoreBatch({ ...base, source: { data: shifted }, asOf: "2026-03-02" });
      const { report, alerts } = await checkDrift(deps, "latest", { bundleDir: fixture.bundleDir });
      expect(report.run_id).toBe(moved.runId);
      const top = report.findings[0];
      expect(top?.feature).toBe("monthly_charges");
      expect(top?.severity).toBe("alert");
      expect(top?.psi).toBeGreaterThanOrEqual(0.25);
      expect(top?.ks?.p_value).toBeLessThan(0.01);
      const otherInputs = report.findings.filter((f) => f.kind !== "score" && f.feature !== "monthly_charges");
      expect(otherInputs.every((f) => f.severity === "ok")).toBe(true);
      expect(alerts.some((a) => a.rule === "drift.feature" && a.subject === "monthly_charges" && a.severity === "alert" && a.new)).toBe(true);

      const stored = await getDriftReport(store, moved.runId);
      expect(stored?.severity).toBe("alert");
      expect((JSON.parse(stored?.report ?? "{}") as { drifted: string[] }).drifted).toContain("monthly_charges");
      expect((await listAlerts(store, { rules: ["drift.feature"] })).map((a) => a.subject)).toContain("monthly_charges");
      expect(sink.posted.length).toBe(alerts.filter((a) => a.new).length + calmAlerts.filter((a) => a.new).length);
    } finally {
      await store.close();
    }
  });
});
