/**
 * How wrong is performance estimated before labels? Prints one JSON object.
 *
 *   node --import tsx benchmarks/estimated_performance.ts [--seeds 5] [--rows 20000] [--train-rows 20000]
 *
 * One model is trained on synthetic customers (the generator knows each row's true churn probability and draws
 * `churned` from it). Then, per scenario and seed, a fresh synthetic month is scored into a SQLite store, its
 * performance is estimated from the probabilities alone (src/monitoring/check-estimate.ts), its labels are
 * ingested as outcomes, and realised performance is computed the way `monitor performance` does. Scenarios: no
 * drift; covariate shift (monthly charges moved by several amounts; the churn relationship unchanged); concept
 * drift (same inputs, the relationship changed). Reported per scenario over the seeds: |estimated − realised| for
 * ROC AUC and recall (mean and max), how often realised recall fell inside the estimate's 95% band, the estimate's
 * status, and whether the realised-recall alert fired. A private CHURNOPS_HOME and store under a temporary folder.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, PROJECT_ROOT } from "../src/config.js";
import { openSource } from "../src/data/source.js";
import { createLogger } from "../src/log.js";
import { readBundle } from "../src/model/bundle.js";
import { ChurnModel } from "../src/model/runtime.js";
import { syntheticTrainArgs } from "../src/model/trainer.js";
import type { AlertSink } from "../src/monitoring/alerts.js";
import { checkEstimate, compareWithRealised } from "../src/monitoring/check-estimate.js";
import { checkPerformance } from "../src/monitoring/performance.js";
import { scoreBatch } from "../src/scoring/batch.js";
import { openStore } from "../src/store/db.js";
import { listAlerts } from "../src/store/monitoring.js";
import { upsertOutcomes } from "../src/store/outcomes.js";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const seeds = Number(flag("seeds", "5"));
const rows = Number(flag("rows", "20000"));
const trainRows = Number(flag("train-rows", "20000"));
const dir = mkdtempSync(join(tmpdir(), "churnops-estimate-bench-"));
const home = join(dir, "home");
const python = join(PROJECT_ROOT, "trainer", ".venv", "bin", "python");
const trainer = (args: string[]): string =>
  execFileSync(python, ["-m", "churnops_trainer", ...args, "--json"], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1 << 26,
  });

interface Scenario {
  name: string;
  kind: "none" | "covariate" | "concept";
  args: string[];
}
const SCENARIOS: Scenario[] = [
  { name: "no drift", kind: "none", args: [] },
  { name: "covariate shift: monthly_charges +10", kind: "covariate", args: ["--drift-feature", "monthly_charges", "--drift-shift", "10"] },
  { name: "covariate shift: monthly_charges +20", kind: "covariate", args: ["--drift-feature", "monthly_charges", "--drift-shift", "20"] },
  { name: "covariate shift: monthly_charges +40", kind: "covariate", args: ["--drift-feature", "monthly_charges", "--drift-shift", "40"] },
  { name: "covariate shift: num_support_tickets +1", kind: "covariate", args: ["--drift-feature", "num_support_tickets", "--drift-shift", "1"] },
  { name: "concept drift 0.5", kind: "concept", args: ["--concept-drift", "0.5"] },
  { name: "concept drift 1.0", kind: "concept", args: ["--concept-drift", "1.0"] },
];

const silentSink: AlertSink = { log: createLogger({}, "silent"), webhookUrl: null, timeoutMs: 1000, maxAttempts: 1 };

async function labelsOf(path: string): Promise<{ customer_id: string; churned: number }[]> {
  const source = await openSource({ data: path });
  const out: { customer_id: string; churned: number }[] = [];
  try {
    for await (const chunk of source.chunks({ columns: ["customer_id", "churned"], chunkSize: 50_000, skipRows: 0 }))
      for (let i = 0; i < chunk.size; i++)
        out.push({ customer_id: String(chunk.columns.get("customer_id")?.[i]), churned: Number(chunk.columns.get("churned")?.[i]) });
  } finally {
    await source.close();
  }
  return out;
}

const stats = (xs: number[]) => ({
  mean: xs.length === 0 ? null : Number((xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(4)),
  max: xs.length === 0 ? null : Number(Math.max(...xs).toFixed(4)),
});

const t0 = performance.now();
const trainData = join(dir, "train.parquet");
trainer(["synth", "--rows", String(trainRows), "--seed", "7", "--out", trainData]);
const trained = JSON.parse(trainer([...syntheticTrainArgs(trainData), "--seed", "42", "--no-register"])) as { bundle_path: string };
const model = await ChurnModel.load(trained.bundle_path);
const storeUrl = `sqlite://${join(dir, "store.db")}`;
const store = await openStore(storeUrl);
const config = loadConfig({
  env: { CHURNOPS_HOME: home, CHURNOPS_DB_URL: storeUrl, MLFLOW_TRACKING_URI: "" },
  cwd: dir,
});
// Each scenario-seed is its own month; labels arrive 20 days after its score date, inside a 25-day horizon.
config.monitoring.performance.horizon_days = 25;
// The model is not registered: judge realised recall against its bundle's own target.
const { json: bundle } = await readBundle(trained.bundle_path);
config.monitoring.performance.recall_target = bundle.thresholds.recall_target ?? 0.8;
const log = createLogger({}, "silent");
const deps = { store, config, log, alerts: silentSink };
const results: Record<string, unknown>[] = [];
try {
  let month = 0;
  for (const scenario of SCENARIOS) {
    const aucErr: number[] = [];
    const recallErr: number[] = [];
    let inBand = 0;
    const perSeed: Record<string, unknown>[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      const asOf = new Date(Date.UTC(2027, month++, 1)).toISOString().slice(0, 10);
      const data = join(dir, `s${month}.parquet`);
      trainer(["synth", "--rows", String(rows), "--seed", String(1000 + seed), "--out", data, ...scenario.args]);
      const run = await scoreBatch({ model, kind: "monthly", asOf, store, source: { data }, chunkSize: 65_536, badRows: "quarantine" });
      const { report } = await checkEstimate(deps, run.runId, { bundleDir: trained.bundle_path });
      const observed = new Date(Date.parse(`${asOf}T00:00:00Z`) + 20 * 86_400_000).toISOString().slice(0, 10);
      await upsertOutcomes(
        store,
        (await labelsOf(data)).map((l) => ({ ...l, observed_at: observed, source: "benchmark", ingested_at: new Date().toISOString() })),
      );
      const realised = await checkPerformance(deps);
      const mine = realised.reports.filter((r) => r.run_id === run.runId);
      const [cmp] = await compareWithRealised(store, mine);
      const realisedAlert = (await listAlerts(store, { rules: ["performance.recall"], limit: 10_000 })).some((a) => a.run_id === run.runId);
      if (cmp?.error.roc_auc !== null && cmp?.error.roc_auc !== undefined) aucErr.push(Math.abs(cmp.error.roc_auc));
      if (cmp?.error.recall !== null && cmp?.error.recall !== undefined) recallErr.push(Math.abs(cmp.error.recall));
      if (cmp?.recall_in_band === true) inBand++;
      perSeed.push({
        seed: 1000 + seed,
        estimated: { roc_auc: report.roc_auc, recall: report.recall, recall_band: report.band.recall, status: report.status },
        realised: { roc_auc: cmp?.realised.roc_auc ?? null, recall: cmp?.realised.recall ?? null, status: mine[0]?.status ?? null, alert_fired: realisedAlert },
      });
    }
    results.push({
      scenario: scenario.name,
      kind: scenario.kind,
      abs_error: { roc_auc: stats(aucErr), recall: stats(recallErr) },
      realised_recall_in_band: `${inBand}/${seeds}`,
      goal_met: scenario.kind === "concept" ? null : (stats(aucErr).mean ?? 1) <= 0.02 && (stats(recallErr).mean ?? 1) <= 0.03,
      seeds: perSeed,
    });
  }
} finally {
  await model.close();
  await store.close();
}
process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: "estimated_performance",
      rows_per_batch: rows,
      train_rows: trainRows,
      seeds,
      model: { threshold: bundle.thresholds.operating, reference_calibration: (bundle.reference as { calibration?: unknown }).calibration ?? null },
      goal: "|estimated − realised| ≤ 0.02 ROC AUC and ≤ 0.03 recall (mean over seeds) without drift and under covariate shift; concept drift: estimate blind, realised alert fires",
      scenarios: results,
      seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    },
    null,
    2,
  )}\n`,
);
