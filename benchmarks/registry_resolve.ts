/**
 * What naming a model costs, as people type it: a 10-row `churnops score` with the champion (embedded MLflow
 * store, no store write) and `churnops models`, each the whole process from start to exit, repeated.
 * Prints one JSON object. Usage: node --import tsx benchmarks/registry_resolve.ts [repeats]
 * Run it under the machine's CPU lock; it trains a small model once into .churnops-bench/registry.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const PY = join(ROOT, "trainer", ".venv", "bin", "python");
const CLI = join(ROOT, "bin", "churnops.js");
const WORK = join(ROOT, ".churnops-bench", "registry");
const HOME = join(WORK, "home");
const repeats = Number(process.argv[2] ?? "5");
const env = { ...process.env, CHURNOPS_HOME: HOME, MLFLOW_TRACKING_URI: "", CHURNOPS_LOG_LEVEL: "warn" };

function trainer(args: string[]): void {
  execFileSync(PY, ["-m", "churnops_trainer", ...args, "--json"], { env, stdio: ["ignore", "ignore", "inherit"] });
}

/** Wall seconds of each run of the whole command. */
function times(args: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = process.hrtime.bigint();
    const res = spawnSync(process.execPath, [CLI, ...args], { env, encoding: "utf8" });
    if (res.status !== 0) throw new Error(`churnops ${args.join(" ")} failed: ${res.stderr}`);
    out.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  return out;
}

function summary(samples: number[]): { median_s: number; min_s: number; max_s: number; runs: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { median_s: round(sorted[Math.floor(sorted.length / 2)] ?? 0), min_s: round(sorted[0] ?? 0), max_s: round(sorted.at(-1) ?? 0), runs: sorted.length };
}

mkdirSync(WORK, { recursive: true });
const data = join(WORK, "customers.parquet");
const tenRows = join(WORK, "ten.parquet");
if (!existsSync(join(HOME, "mlflow.db"))) {
  trainer(["synth", "--rows", "4000", "--seed", "11", "--out", data]);
  trainer(["synth", "--rows", "10", "--seed", "3", "--out", tenRows]);
  trainer(["train", "--data", data, "--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob"]);
  trainer(["promote", "--version", "1"]);
}
// The first command after a train may rebuild what the registry cache holds; time the steady state.
times(["models"]);

console.log(
  JSON.stringify(
    {
      benchmark: "registry_resolve",
      load_average_1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      score_10_rows_champion: summary(times(["score", "--data", tenRows, "--no-store", "--out", join(WORK, "scores.csv")])),
      models: summary(times(["models"])),
    },
    null,
    1,
  ),
);
