import { renameSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
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

describe.each(storeTargets)("drift profiled while scoring, on $name", (target) => {
  it("gives the same report from the stored profile as from reading the input again, also for a resumed run and without the input", async () => {
    // 6,000 rows with an unseen category at row 5,001: under the "fail" policy the run stops with two chunks
    // committed (a Parquet chunk is at least one DuckDB vector, 2,048 rows), then resumes.
    const data = join(workdir(), "resumed.parquet");
    const instance = await DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    await conn.run(`CREATE TABLE t AS SELECT * REPLACE (customer_id || '-' || k AS customer_id) FROM range(3) r(k), read_parquet('${shifted}') ORDER BY k`);
    await conn.run("UPDATE t SET contract_type = 'weekly' WHERE rowid = 5000");
    await conn.run(`COPY t TO '${data}'`);
    conn.closeSync();
    instance.closeSync();
    const url = await target.fresh();
    const store = await openStore(url);
    try {
      const deps = { store, config: testConfig(fixture, url), log: quietLog() };
      const base = { model, kind: "daily" as const, store, chunkSize: 500, source: { data }, asOf: "2026-04-01" };
      await expect(scoreBatch({ ...base, badRows: "fail" })).rejects.toThrow(/row 5001/);
      const run = await scoreBatch({ ...base, badRows: "quarantine" });
      expect(run).toMatchObject({ resumedFrom: 4096, rowsScored: 5999, rowsQuarantined: 1 });

      const fromProfile = await checkDrift(deps, run.runId, { bundleDir: fixture.bundleDir });
      const reread = await checkDrift(deps, run.runId, { bundleDir: fixture.bundleDir, source: { data } });
      const comparable = (r: typeof fromProfile.report) => ({ ...r, created_at: "", notes: [] });
      expect(comparable(fromProfile.report)).toEqual(comparable(reread.report));
      expect(fromProfile.report.notes).toContain("profiled while scoring (the input was not read again)");
      expect(fromProfile.report.rows_profiled).toBe(6000);
      expect(fromProfile.report.findings.find((f) => f.feature === "contract_type")?.unseen_examples).toEqual({ weekly: 1 });

      // The input is gone: the stored profile is all a check needs.
      renameSync(data, `${data}.moved`);
      const withoutInput = await checkDrift(deps, run.runId, { bundleDir: fixture.bundleDir });
      expect(comparable(withoutInput.report)).toEqual(comparable(fromProfile.report));

      // A run stored before profiles were kept falls back to reading its input again, and says so.
      renameSync(`${data}.moved`, data);
      await store.db.deleteFrom("run_profiles").where("run_id", "=", run.runId).execute();
      const legacy = await checkDrift(deps, run.runId, { bundleDir: fixture.bundleDir });
      expect(legacy.report.notes.some((n) => n.includes("before drift profiles were kept") && n.includes("read again"))).toBe(true);
      expect(comparable(legacy.report)).toEqual(comparable(fromProfile.report));
    } finally {
      await store.close();
    }
  });
});
