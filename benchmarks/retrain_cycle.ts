/**
 * The self-closing retrain cycle (issue 24), end to end as a user runs it: synthetic monthly snapshots of the same
 * customers (30 days apart) with concept drift from month 4, `churnops daily` once per snapshot for 8 months, the
 * outcomes of each month ingested a month late (`churnops outcomes ingest`), no file prepared by a person: the daily
 * job builds its own point-in-time training set (`dataset build` over a rolling window) and retrains through the gate.
 * Prints one JSON object: per month, the realised recall of the model in force against the initial model never
 * retrained, the retrain decision, and the wall time of each command.
 * Usage: node --import tsx benchmarks/retrain_cycle.ts [rows=8000] [window_days=60] [churn_offset=-2]   (`npm run build` first)
 * churn_offset lowers the synthetic recipe's churn (about a quarter a month) towards real monthly churn (-2: ~5%).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import SqliteDatabase from "better-sqlite3";

const ROOT = join(import.meta.dirname, "..");
const PY = join(ROOT, "trainer", ".venv", "bin", "python");
const CLI = join(ROOT, "bin", "churnops.js");
const WORK = join(ROOT, ".churnops-bench", "retrain-cycle");
const ROWS = Number(process.argv[2] ?? "8000");
const WINDOW_DAYS = Number(process.argv[3] ?? "60");
const CHURN_OFFSET = process.argv[4] ?? "-2";
const MONTHS = 8;
const DRIFT_FROM = 4;
const HOME = join(WORK, "home");
const env = {
  ...process.env,
  CHURNOPS_HOME: HOME,
  CHURNOPS_DB_URL: `sqlite://${join(HOME, "churnops.db")}`,
  MLFLOW_TRACKING_URI: "",
  CHURNOPS_LOG_LEVEL: "warn",
};

const day = (m: number): string => new Date(Date.parse("2026-01-01T00:00:00Z") + (m - 1) * 30 * 86_400_000).toISOString().slice(0, 10);

function churnops(args: string[]): { seconds: number; stdout: string } {
  const t = performance.now();
  // The trainer's commands (train, promote) are passed through unparsed and take no --config.
  const config = ["train", "promote"].includes(args[0] as string) ? [] : ["--config", join(WORK, "churnops.toml")];
  const res = spawnSync(process.execPath, [CLI, ...config, ...args], { env, encoding: "utf8", maxBuffer: 1 << 26 });
  if (res.status !== 0) throw new Error(`churnops ${args.join(" ")} failed (${res.status}): ${res.stderr}`);
  return { seconds: (performance.now() - t) / 1000, stdout: res.stdout };
}

async function duck(sql: string[]): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const s of sql) rows = (await conn.runAndReadAll(s)).getRowObjectsJS() as Record<string, unknown>[];
    return rows;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

function recall(decisions: Map<string, number>, churned: Map<string, number>): number | null {
  let p = 0;
  let tp = 0;
  for (const [id, y] of churned) {
    if (y !== 1) continue;
    p++;
    if (decisions.get(id) === 1) tp++;
  }
  return p === 0 ? null : tp / p;
}

rmSync(WORK, { recursive: true, force: true });
mkdirSync(HOME, { recursive: true });
const load = [loadavg()[0]];
const series = join(WORK, "series.parquet");
execFileSync(
  PY,
  [
    "-m",
    "churnops_trainer",
    "synth",
    "--rows",
    String(ROWS),
    "--seed",
    "31",
    "--months",
    String(MONTHS),
    "--concept-drift",
    "1.0",
    "--drift-from-month",
    String(DRIFT_FROM),
    "--churn-offset",
    CHURN_OFFSET,
    "--out",
    series,
  ],
  { env, stdio: "ignore" },
);
const initial = join(WORK, "initial.parquet");
execFileSync(PY, ["-m", "churnops_trainer", "synth", "--rows", String(ROWS), "--seed", "32", "--churn-offset", CHURN_OFFSET, "--out", initial], {
  env,
  stdio: "ignore",
});
writeFileSync(
  join(WORK, "churnops.toml"),
  [
    'model_name = "churn"',
    "[daily]",
    `data = "${join(WORK, "snapshot-{date}.parquet")}"`,
    "[monitoring.retrain]",
    "every_days = 30",
    "on_alert = true",
    "horizon_days = 30",
    `window_days = ${WINDOW_DAYS}`,
    "",
  ].join("\n"),
);
// The snapshots a CRM would export: features only (no label, no oracle); the labels become next month's outcomes.
const churned = new Map<number, Map<string, number>>();
for (let m = 1; m <= MONTHS; m++) {
  const src = `(SELECT * FROM read_parquet('${series}') WHERE snapshot_month = ${m})`;
  const rows = await duck([
    `COPY (SELECT * EXCLUDE (snapshot_month, churned, true_churn_prob) FROM ${src}) TO '${join(WORK, `snapshot-${day(m)}.parquet`)}' (FORMAT parquet)`,
    `COPY (SELECT customer_id, churned FROM ${src}) TO '${join(WORK, `outcomes-${m}.parquet`)}' (FORMAT parquet)`,
    `SELECT customer_id, churned FROM ${src}`,
  ]);
  churned.set(m, new Map(rows.map((r) => [String(r.customer_id), Number(r.churned)])));
}

const t0 = performance.now();
const train = churnops([
  "train",
  "--data",
  initial,
  "--target",
  "churned",
  "--positive",
  "1",
  "--id-col",
  "customer_id",
  "--drop",
  "true_churn_prob",
  "--json",
]);
const trained = JSON.parse(train.stdout) as { version: string | number; bundle_path: string };
churnops(["promote", "--version", String(trained.version), "--json"]);
const bundle = JSON.parse(readFileSync(join(trained.bundle_path, "bundle.json"), "utf8")) as { thresholds: { recall_target?: number } };
const target = bundle.thresholds.recall_target ?? 0.8;

interface MonthResult {
  month: number;
  date: string;
  drifted: boolean;
  customers: number;
  churners: number;
  model_in_force: string;
  recall_cycle: number | null;
  recall_never_retrained: number | null;
  retrain: string;
  daily_seconds: number;
  ingest_seconds: number;
}
const months: MonthResult[] = [];
for (let m = 1; m <= MONTHS; m++) {
  const date = day(m);
  // Month k's outcomes (observed at the next snapshot, 30 days on) reach churnops a month later still.
  let ingestSeconds = 0;
  if (m >= 3) ingestSeconds = churnops(["outcomes", "ingest", join(WORK, `outcomes-${m - 2}.parquet`), "--observed-at", day(m - 1), "--json"]).seconds;
  const job = churnops(["daily", "--date", date, "--json"]);
  const summary = JSON.parse(job.stdout) as {
    score: { run_id: string; model_version: string };
    watch: { retrain: { ran: boolean; reason: string; result?: { decision: string; promoted: boolean } } | { error: string } };
  };
  const db = new SqliteDatabase(join(HOME, "churnops.db"), { readonly: true });
  const decisions = new Map(
    (db.prepare("SELECT customer_id, decision FROM scores WHERE run_id = ?").all(summary.score.run_id) as { customer_id: string; decision: number }[]).map(
      (r) => [r.customer_id, r.decision],
    ),
  );
  db.close();
  // The same snapshot scored by the initial model, never retrained (file only, nothing stored).
  const out = join(WORK, `never-${m}.parquet`);
  churnops(["score", "--data", join(WORK, `snapshot-${date}.parquet`), "--model", trained.bundle_path, "--as-of", date, "--no-store", "--out", out, "--json"]);
  const never = new Map((await duck([`SELECT customer_id, decision FROM read_parquet('${out}')`])).map((r) => [String(r.customer_id), Number(r.decision)]));
  const labels = churned.get(m) as Map<string, number>;
  const r = summary.watch.retrain;
  months.push({
    month: m,
    date,
    drifted: m >= DRIFT_FROM,
    customers: labels.size,
    churners: [...labels.values()].filter((v) => v === 1).length,
    model_in_force: summary.score.model_version,
    recall_cycle: recall(decisions, labels),
    recall_never_retrained: recall(never, labels),
    retrain:
      "error" in r ? `failed: ${r.error}` : r.ran ? `${r.result?.decision}${r.result?.promoted ? " (promoted)" : ""}: ${r.reason}` : `not run: ${r.reason}`,
    daily_seconds: Number(job.seconds.toFixed(1)),
    ingest_seconds: Number(ingestSeconds.toFixed(1)),
  });
  load.push(loadavg()[0]);
}
const history = JSON.parse(churnops(["retrain", "--history", "--json"]).stdout) as {
  date: string;
  outcome: string;
  reason: string;
  dataset_rows: number | null;
  dataset_positives: number | null;
}[];
const within = (x: number | null) => x !== null && Math.abs(x - target) <= 0.05;
const recoveredBy =
  months.find((mm) => mm.month >= DRIFT_FROM && within(mm.recall_cycle) && months.filter((k) => k.month >= mm.month).every((k) => within(k.recall_cycle)))
    ?.month ?? null;
console.log(
  JSON.stringify(
    {
      benchmark: "retrain_cycle",
      rows: ROWS,
      months: MONTHS,
      drift_from_month: DRIFT_FROM,
      window_days: WINDOW_DAYS,
      churn_offset: Number(CHURN_OFFSET),
      recall_target: target,
      goal: `recall of the model in force within 0.05 of ${target} by month ${DRIFT_FROM + 2}, no file prepared by a person`,
      recovered_from_month: recoveredBy,
      goal_met: recoveredBy !== null && recoveredBy <= DRIFT_FROM + 2,
      per_month: months,
      retrain_history: history
        .reverse()
        .map((h) => ({ date: h.date, outcome: h.outcome, rows: h.dataset_rows, positives: h.dataset_positives, reason: h.reason })),
      total_seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
      machine: { cpus: cpus().length, load_1m: load.map((l) => Number((l ?? 0).toFixed(2))) },
    },
    null,
    2,
  ),
);
