/**
 * Monitoring on the synthetic generator's three scenarios; prints one JSON object.
 *
 *   npx tsx benchmarks/monitor_scenarios.ts [--batches 100] [--rows 2000] [--feature monthly_charges --shift 20]
 *
 * (a) no drift: batches from the training distribution; the false-alarm rate is the share with any `alert`.
 * (b) one feature shifted: the detection rate is the share where that feature is at `alert` and ranked first.
 * (c) concept drift: inputs unchanged, churn relationship changed: input-drift alarms, the realised-recall alert
 *     once labels arrive, and the promotion gate's decision on a retrained challenger, with both models' numbers.
 * A private CHURNOPS_HOME and SQLite store are made under a temporary folder; nothing else is touched.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { loadConfig, PROJECT_ROOT } from "../src/config.js";
import { openSource } from "../src/data/source.js";
import { createLogger } from "../src/log.js";
import { batchFromRows } from "../src/model/features.js";
import { loadModel } from "../src/model/registry.js";
import type { ChurnModel } from "../src/model/runtime.js";
import { checkDrift } from "../src/monitoring/check-drift.js";
import { assessDrift, BatchProfiler, binScores } from "../src/monitoring/drift.js";
import { checkPerformance } from "../src/monitoring/performance.js";
import { retrain } from "../src/monitoring/retrain.js";
import { scoreBatch } from "../src/scoring/batch.js";
import { openStore } from "../src/store/db.js";
import { upsertOutcomes } from "../src/store/outcomes.js";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const batches = Number(flag("batches", "100"));
const rows = Number(flag("rows", "2000"));
const feature = flag("feature", "monthly_charges");
const shift = flag("shift", "20");
const dir = mkdtempSync(join(tmpdir(), "churnops-monitor-bench-"));
const home = join(dir, "home");
const python = join(PROJECT_ROOT, "trainer", ".venv", "bin", "python");
const env = { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" };
const trainer = (args: string[]): string =>
  execFileSync(python, ["-m", "churnops_trainer", ...args, "--json"], {
    cwd: PROJECT_ROOT,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1 << 26,
  });

const config = loadConfig({ env: { CHURNOPS_HOME: home, CHURNOPS_DB_URL: `sqlite://${join(dir, "store.db")}`, MLFLOW_TRACKING_URI: "" }, cwd: dir });
const log = createLogger({}, "silent");

/** Split one generated table into `batches` consecutive batches of `rows` (rows of one snapshot are independent draws). */
async function driftRates(
  model: ChurnModel,
  path: string,
  named: string | null,
): Promise<{ alarms: number; detected: number; warned: number; maxPsi: number[] }> {
  const source = await openSource({ data: path });
  const out = { alarms: 0, detected: 0, warned: 0, maxPsi: [] as number[] };
  const names = model.bundle.schema.features.map((f) => f.name);
  try {
    for await (const chunk of source.chunks({ columns: names, chunkSize: rows, skipRows: 0 })) {
      const profiler = new BatchProfiler(model.bundle);
      profiler.add(chunk.columns, chunk.size);
      const records = Array.from({ length: chunk.size }, (_, i) =>
        Object.fromEntries(names.map((n) => [n, (chunk.columns.get(n)?.[i] ?? null) as string | number | null])),
      );
      const probabilities = await model.predict(batchFromRows(model.bundle, records));
      const summary = assessDrift({
        bundle: model.bundle,
        profile: profiler.profile(),
        scoreBins: binScores(model.bundle.reference.score.edges, probabilities),
        rowsRead: chunk.size,
        rowsQuarantined: 0,
        thresholds: config.monitoring.drift,
      });
      if (summary.severity === "alert") out.alarms++;
      if (summary.severity !== "ok") out.warned++;
      const top = summary.findings[0];
      if (named !== null && top?.feature === named && top.severity === "alert") out.detected++;
      out.maxPsi.push(summary.max_feature_psi ?? 0);
    }
  } finally {
    await source.close();
  }
  return out;
}

async function labelsOf(path: string): Promise<{ customer_id: string; churned: number }[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const r = (await conn.runAndReadAll(`SELECT customer_id, churned FROM read_parquet('${path}')`)).getRowObjectsJS();
  conn.closeSync();
  instance.closeSync();
  return r.map((x) => ({ customer_id: String(x.customer_id), churned: Number(x.churned) }));
}

const started = performance.now();
const trainPath = join(dir, "train.parquet");
trainer(["synth", "--rows", "4000", "--seed", "11", "--out", trainPath]);
const trained = JSON.parse(
  trainer(["train", "--data", trainPath, "--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob", "--seed", "42"]),
) as { version: string | number };
trainer(["promote", "--version", String(trained.version)]);
const champion = await loadModel(config, "champion");

const stablePath = join(dir, "stable.parquet");
trainer(["synth", "--rows", String(rows * batches), "--seed", "1001", "--out", stablePath]);
const shiftedPath = join(dir, "shifted.parquet");
trainer(["synth", "--rows", String(rows * batches), "--seed", "1002", "--out", shiftedPath, "--drift-feature", feature, "--drift-shift", shift]);
const conceptPath = join(dir, "concept.parquet");
trainer(["synth", "--rows", String(rows * batches), "--seed", "1003", "--out", conceptPath, "--concept-drift", "1.0"]);

const a = await driftRates(champion, stablePath, null);
const b = await driftRates(champion, shiftedPath, feature);
const cInputs = await driftRates(champion, conceptPath, null);
await champion.close();

// (c) end to end through the store: score a month, labels arrive, performance alert, retrain, gate.
const store = await openStore(config.store_url);
const monthPath = join(dir, "month.parquet");
const recentPath = join(dir, "recent.parquet");
trainer(["synth", "--rows", "3000", "--seed", "2001", "--out", monthPath, "--concept-drift", "1.0"]);
trainer(["synth", "--rows", "4000", "--seed", "2002", "--out", recentPath, "--concept-drift", "1.0"]);
const model = await loadModel(config, "champion");
const run = await scoreBatch({ source: { data: monthPath }, model, kind: "monthly", asOf: "2026-04-01", store, chunkSize: 5000, badRows: "quarantine" });
await model.close();
const deps = { store, config, log, alerts: { log, webhookUrl: null, timeoutMs: 1000, maxAttempts: 1 } };
const drift = await checkDrift(deps, run.runId);
await upsertOutcomes(
  store,
  (await labelsOf(monthPath)).map((l) => ({ ...l, observed_at: "2026-05-01", source: "benchmark", ingested_at: new Date().toISOString() })),
);
const perf = await checkPerformance(deps);
const decision = await retrain(deps, { data: recentPath, trigger: "benchmark" });
await store.close();

const pct = (x: number) => Math.round((x / batches) * 10000) / 10000;
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] ?? null;
process.stdout.write(
  `${JSON.stringify(
    {
      batches,
      rows_per_batch: rows,
      thresholds: config.monitoring.drift,
      no_drift: { false_alarm_rate: pct(a.alarms), warn_or_alert_rate: pct(a.warned), median_max_feature_psi: median(a.maxPsi), bar: "≤ 0.05" },
      one_feature_shifted: { feature, shift: Number(shift), detection_rate: pct(b.detected), median_max_feature_psi: median(b.maxPsi), bar: "≥ 0.95" },
      concept_drift: {
        input_alarm_rate: pct(cInputs.alarms),
        scored_month: {
          run: run.runId,
          drift_severity: drift.report.severity,
          input_alerts: drift.report.findings.filter((f) => f.severity === "alert").map((f) => f.feature),
        },
        performance: perf.reports.map((r) => ({
          version: r.model_version,
          month: r.month,
          recall: r.recall,
          precision: r.precision,
          roc_auc: r.roc_auc,
          status: r.status,
        })),
        performance_alert_fired: perf.alerts.some((x) => x.rule === "performance.recall" && x.severity === "alert"),
        gate: {
          decision: decision.decision,
          promoted: decision.promoted,
          reason: decision.reason,
          champion: decision.champion,
          challenger: decision.challenger,
        },
      },
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
    null,
    2,
  )}\n`,
);
