/**
 * End-to-end batch scoring throughput: synthetic customers in Parquet → `churnops score` → Parquet, and →
 * SQLite; rows/s and peak RSS of the scoring process (GNU time), beside the original approach (pandas
 * get_dummies + scikit-learn predict_proba, benchmarks/original_scoring.py) on the same rows.
 * Prints one JSON object. Usage: node --import tsx benchmarks/score_throughput.ts [rows,rows,…]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const PY = join(ROOT, "trainer", ".venv", "bin", "python");
const WORK = join(ROOT, ".churnops-bench");
const sizes = (process.argv[2] ?? "1000000,10000000").split(",").map(Number);

function trainer(args: string[]): string {
  return execFileSync(PY, ["-m", "churnops_trainer", ...args], {
    env: { ...process.env, CHURNOPS_HOME: join(WORK, "home") },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1 << 26,
  });
}

interface Measured {
  seconds: number;
  peak_rss_mb: number;
  stdout: string;
}

/** Run a command under GNU time; wall seconds and peak resident memory of the whole process. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Measured {
  const stats = join(WORK, "time.txt");
  const res = spawnSync("/usr/bin/time", ["-f", "%e %M", "-o", stats, cmd, ...args], { env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 1 << 26 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${res.stderr}`);
  const [seconds, kb] = readFileSync(stats, "utf8").trim().split(/\s+/).slice(-2).map(Number);
  return { seconds: seconds ?? 0, peak_rss_mb: Math.round((kb ?? 0) / 1024), stdout: res.stdout };
}

mkdirSync(WORK, { recursive: true });
const trainData = join(WORK, "train-20000.parquet");
if (!existsSync(trainData)) trainer(["synth", "--rows", "20000", "--seed", "1", "--out", trainData]);
const trained = JSON.parse(
  trainer(["train", "--data", trainData, "--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob", "--json"]),
) as {
  bundle_path: string;
};
// Registered as the product does it (`churnops train`), so stored run ids and versions are the real, short ones.
const bundle = JSON.parse(readFileSync(join(trained.bundle_path, "bundle.json"), "utf8")) as { model_version: string; onnx: { tree_compaction?: unknown } };

const results = [];
for (const rows of sizes) {
  const data = join(WORK, `customers-${rows}.parquet`);
  if (!existsSync(data)) trainer(["synth", "--rows", String(rows), "--seed", "2", "--out", data]);
  const cli = join(ROOT, "bin", "churnops.js");
  const common = ["score", "--data", data, "--model", trained.bundle_path, "--as-of", "2026-01-01", "--json"];
  const outParquet = join(WORK, `scores-${rows}.parquet`);
  const toParquet = timed(process.execPath, [cli, ...common, "--no-store", "--out", outParquet], { CHURNOPS_LOG_LEVEL: "warn" });
  const db = join(WORK, `store-${rows}.db`);
  rmSync(db, { force: true });
  rmSync(`${db}-wal`, { force: true });
  const toSqlite = timed(process.execPath, [cli, ...common], { CHURNOPS_DB_URL: `sqlite://${db}`, CHURNOPS_LOG_LEVEL: "warn" });
  const original = timed(PY, [join(ROOT, "benchmarks", "original_scoring.py"), trainData, data, join(WORK, `original-${rows}.parquet`)]);
  const originalJson = JSON.parse(original.stdout) as { rows_per_s: number };
  const rate = (m: Measured) => Math.round(rows / m.seconds);
  results.push({
    rows,
    parquet_to_parquet: { seconds: toParquet.seconds, rows_per_s: rate(toParquet), peak_rss_mb: toParquet.peak_rss_mb },
    parquet_to_sqlite: { seconds: toSqlite.seconds, rows_per_s: rate(toSqlite), peak_rss_mb: toSqlite.peak_rss_mb },
    original_get_dummies_predict_proba: {
      seconds: original.seconds,
      rows_per_s_end_to_end: rate(original),
      rows_per_s_scoring_only: originalJson.rows_per_s,
      peak_rss_mb: original.peak_rss_mb,
    },
    speedup_parquet_vs_original: Number((rate(toParquet) / rate(original)).toFixed(2)),
  });
  for (const f of [outParquet, db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
}
console.log(
  JSON.stringify(
    {
      benchmark: "score_throughput",
      machine: { cpus: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30) },
      model: { version: bundle.model_version, tree_compaction: bundle.onnx.tree_compaction ?? null },
      results,
    },
    null,
    2,
  ),
);
