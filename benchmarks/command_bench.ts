/**
 * Shared pieces of the benchmarks that time whole `churnops` commands (score_commands.ts, score_store.ts): a work
 * folder with its own CHURNOPS_HOME, the project's trainer, a champion trained there once, and one command timed
 * under GNU time (seconds, peak RSS) from the working directory a user would be in.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..");
export const PY = join(ROOT, "trainer", ".venv", "bin", "python");
/** The launcher measured: this build's, or another one named by CHURNOPS_BENCH_CLI. */
export const CLI = process.env.CHURNOPS_BENCH_CLI ?? join(ROOT, "bin", "churnops.js");
/** Another build's launcher (e.g. main's), timed the same way in the same run. */
export const BASELINE_CLI = process.env.CHURNOPS_BENCH_BASELINE_CLI;

export interface Measured {
  seconds: number;
  peak_rss_mb: number;
}

export interface CommandBench {
  work: string;
  home: string;
  /** The caller's environment with the bench home and without CHURNOPS_DB_URL (the default store, unless given). */
  env: NodeJS.ProcessEnv;
  /** `python -m churnops_trainer …` in the bench home; its stdout. */
  trainer(args: string[]): string;
  /** One whole command under GNU time, with `extra` added to the environment. */
  timed(cmd: string, args: string[], extra?: NodeJS.ProcessEnv): Measured & { stdout: string };
  /** The champion's training data (20,000 synthetic rows, seed 1). */
  trainData: string;
  /** The champion's bundle folder: trained (20,000 synthetic rows) and promoted the first time, then resolved. */
  championBundle(): string;
}

/** A benchmark's work folder `.churnops-bench/<name>`, made if missing. */
export function commandBench(name: string): CommandBench {
  const work = join(ROOT, ".churnops-bench", name);
  const home = join(work, "home");
  const { CHURNOPS_DB_URL: _callersStore, ...callers } = process.env;
  const env: NodeJS.ProcessEnv = { ...callers, CHURNOPS_HOME: home, CHURNOPS_LOG_LEVEL: "warn" };
  mkdirSync(work, { recursive: true });
  const trainer = (args: string[]): string =>
    execFileSync(PY, ["-m", "churnops_trainer", ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 1 << 26 });
  const timed = (cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}): Measured & { stdout: string } => {
    const stats = join(work, "time.txt");
    const res = spawnSync("/usr/bin/time", ["-f", "%e %M", "-o", stats, cmd, ...args], {
      cwd: work,
      env: { ...env, ...extra },
      encoding: "utf8",
      maxBuffer: 1 << 26,
    });
    if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${res.stderr}`);
    const [seconds, kb] = readFileSync(stats, "utf8").trim().split(/\s+/).slice(-2).map(Number);
    return { seconds: seconds ?? 0, peak_rss_mb: Math.round((kb ?? 0) / 1024), stdout: res.stdout };
  };
  const trainData = join(work, "train-20000.parquet");
  const championBundle = (): string => {
    if (!existsSync(trainData)) trainer(["synth", "--rows", "20000", "--seed", "1", "--out", trainData]);
    if (!existsSync(join(home, "mlruns")) && !existsSync(join(home, "mlflow.db"))) {
      trainer(["train", "--data", trainData, "--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob", "--json"]);
      trainer(["promote"]);
    }
    return trainer(["resolve", "--alias", "champion"]).trim();
  };
  return { work, home, env, trainer, timed, trainData, championBundle };
}
