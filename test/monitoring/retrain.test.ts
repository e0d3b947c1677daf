import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { clearResolveCache, loadModel } from "../../src/model/registry.js";
import { checkDrift } from "../../src/monitoring/check-drift.js";
import { checkPerformance } from "../../src/monitoring/performance.js";
import { retrain, retrainIfNeeded } from "../../src/monitoring/retrain.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore } from "../../src/store/db.js";
import { listGateDecisions } from "../../src/store/monitoring.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { storeTargets } from "../helpers/stores.js";
import { copyHome, quietLog, recordingSink, synth, testConfig, workdir } from "./helpers.js";

const fixture = inject("fixture");
let home: string;
let batch: string;
let recent: string;
/** The challenger trained in the first store's run; later stores judge the same version (training is store-independent). */
let trainedVersion: string | undefined;

async function labels(path: string): Promise<{ id: string; churned: number }[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const rows = (await conn.runAndReadAll(`SELECT customer_id, churned FROM read_parquet('${path}')`)).getRowObjectsJS();
  conn.closeSync();
  instance.closeSync();
  return rows.map((r) => ({ id: String(r.customer_id), churned: Number(r.churned) }));
}

function champion(): string {
  const out = execFileSync(fixture.python, ["-m", "churnops_trainer", "resolve", "--alias", "champion", "--json"], {
    cwd: fixture.root,
    env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return String((JSON.parse(out) as { version: string | number }).version);
}

beforeAll(() => {
  home = copyHome(fixture);
  const dir = workdir();
  // The churn relationship changes (tenure and contract stop mattering, tickets and charges matter more); inputs do not.
  batch = synth(fixture, join(dir, "batch.parquet"), ["--rows", "3000", "--seed", "201", "--concept-drift", "1.0"]);
  recent = synth(fixture, join(dir, "recent.parquet"), ["--rows", "4000", "--seed", "202", "--concept-drift", "1.0"]);
});

describe.each(storeTargets)("concept drift end to end on $name", (target) => {
  // The one end-to-end test with real training and registry calls (Python starts): minutes on a busy machine.
  it("raises no input-drift alarm, alerts on realised recall once labels arrive, and promotes a retrained challenger that scores better", {
    timeout: 400_000,
  }, async () => {
    clearResolveCache();
    const url = await target.fresh();
    const store = await openStore(url);
    const config = testConfig(fixture, url, home);
    // The fixture bundle's own target; set here so judging recall needs no registry lookup (a Python start).
    config.monitoring.performance.recall_target = 0.8;
    const sink = recordingSink();
    const deps = { store, config, log: quietLog(), alerts: sink };
    try {
      const model = await loadModel(config, "champion");
      expect(model.version).toBe(fixture.version);
      const run = await scoreBatch({ source: { data: batch }, model, kind: "monthly", asOf: "2026-04-01", store, chunkSize: 1000, badRows: "quarantine" });
      await model.close();
      const { report } = await checkDrift(deps, run.runId);
      expect(report.findings.filter((f) => f.severity === "alert")).toEqual([]);

      // Before labels: nothing to judge, nothing to retrain for.
      expect((await checkPerformance(deps)).reports).toEqual([]);
      expect((await retrainIfNeeded(deps, { date: "2026-04-02", data: recent })).ran).toBe(false);

      await upsertOutcomes(
        store,
        (await labels(batch)).map((l) => ({
          customer_id: l.id,
          churned: l.churned,
          observed_at: "2026-05-01",
          source: "test",
          ingested_at: new Date().toISOString(),
        })),
      );
      const perf = await checkPerformance(deps);
      const month = perf.reports[0];
      expect(month?.model_version).toBe(fixture.version);
      expect(month?.labels.labelled).toBe(3000);
      expect(month?.status).toBe("alert");
      expect(month?.recall).toBeLessThan(0.75);
      expect(perf.alerts.map((a) => [a.rule, a.severity, a.new])).toEqual([["performance.recall", "alert", true]]);

      const decided =
        trainedVersion === undefined
          ? await retrainIfNeeded(deps, { date: "2026-05-02", data: recent })
          : {
              ran: true as const,
              reason: "alert",
              result: await retrain(deps, { data: recent, trigger: "alert:performance.recall", challenger: trainedVersion }),
            };
      if (!decided.ran) throw new Error(`did not retrain: ${decided.reason}`);
      const won = decided.result;
      trainedVersion ??= won.trained?.version;
      expect(won.decision).toBe("promote");
      expect(won.promoted).toBe(true);
      expect(won.challenger.roc_auc ?? 0).toBeGreaterThan((won.champion.roc_auc ?? 1) + 0.05);
      expect(won.challenger.recall ?? 0).toBeGreaterThan((won.champion.recall ?? 1) + 0.2);
      expect(won.checks.find((c) => c.name === "recall_target")?.passed).toBe(true);
      expect(champion()).toBe(won.challenger.version);

      // The old champion, now the challenger, is worse on the new relationship: the gate refuses it and says why.
      const lost = await retrain(deps, { data: recent, trigger: "manual", challenger: fixture.version });
      expect(lost.decision).toBe("refuse");
      expect(lost.promoted).toBe(false);
      expect(lost.reason).toMatch(/recall|ROC AUC|precision/);
      expect(lost.champion.version).toBe(won.challenger.version);
      const history = await listGateDecisions(store, { modelName: config.model_name });
      expect(history.map((d) => [d.decision, d.promoted])).toEqual([
        ["refuse", 0],
        ["promote", 1],
      ]);
      expect(history[0]?.reason).toBe(lost.reason);
      expect(JSON.parse(history[0]?.challenger_metrics ?? "{}")).toMatchObject({ version: fixture.version });

      // Rollback restores the previous champion (and leaves the registry as the next store run expects it).
      execFileSync(fixture.python, ["-m", "churnops_trainer", "rollback", "--json"], {
        cwd: fixture.root,
        env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" },
        stdio: "ignore",
      });
      expect(champion()).toBe(fixture.version);
    } finally {
      await store.close();
    }
  });
});
