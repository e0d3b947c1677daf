/**
 * The scoring commands as people type them, each timed as a whole process (start to exit, GNU time): the
 * champion by its alias, the default embedded store (SQLite in CHURNOPS_HOME), with and without `--out`, then
 * `monitor drift --run` on that run; beside the original design's batch path (benchmarks/original_scoring.py:
 * pandas get_dummies + scikit-learn predict_proba) on the same file, in the same invocation. Fixed start-up
 * cost is reported on its own: `score` of a 10-row file with the champion, and `churnops --help`.
 * `monitor drift` is also timed with `--bundle DIR`, which skips resolving the run's version in the registry, so
 * the drift check's own cost shows apart from the registry's. CHURNOPS_BENCH_CLI names another build's launcher;
 * CHURNOPS_BENCH_BASELINE_CLI names a second one (e.g. main's) whose start-up commands (`--help`, `models`, a
 * 10-row `score`, `monitor drift` of that run) are timed beside this build's in the same run, alternating, so
 * both see the same machine load. Prints one JSON object.
 * Usage: node --import tsx benchmarks/score_commands.ts [rows,rows,…] (default 1000000)
 */
import { existsSync, rmSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { BASELINE_CLI, CLI, commandBench, type Measured, PY, ROOT } from "./command_bench.js";

/** Start-up commands are run this many times each (alternating builds); the median is reported. */
const STARTUP_REPEATS = 5;
const sizes = (process.argv[2] ?? "1000000").split(",").map(Number);
// The default store (SQLite in the home), whatever the caller's environment names.
const bench = commandBench("commands");
const { work: WORK, home: HOME, trainer, timed, trainData } = bench;

const churnops = (args: string[]) => timed(process.execPath, [CLI, ...args]);
const measured = ({ seconds, peak_rss_mb }: Measured) => ({ seconds, peak_rss_mb });
/** The embedded store starts empty for every scoring command, as on a first run of the day. */
function freshStore(): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(join(HOME, `churnops.db${suffix}`), { force: true });
}

const bundleDir = bench.championBundle();
const tiny = join(WORK, "customers-10.parquet");
if (!existsSync(tiny)) trainer(["synth", "--rows", "10", "--seed", "3", "--out", tiny]);

/** The fixed cost of each build: median of STARTUP_REPEATS whole commands, the builds taking turns. */
function startupOf(clis: readonly string[]): Record<string, Measured>[] {
  const samples = clis.map(() => new Map<string, Measured[]>());
  const add = (i: number, name: string, m: Measured) => samples[i]?.set(name, [...(samples[i]?.get(name) ?? []), measured(m)]);
  for (let r = 0; r < STARTUP_REPEATS; r++) {
    clis.forEach((cli, i) => {
      const run = (args: string[]) => timed(process.execPath, [cli, ...args]);
      freshStore();
      add(i, "help", run(["--help"]));
      add(i, "models", run(["models"]));
      const score = run(["score", "--data", tiny, "--json"]);
      add(i, "score_10_rows_champion", score);
      add(i, "monitor_drift_of_that_run", run(["monitor", "drift", "--run", (JSON.parse(score.stdout) as { run_id: string }).run_id, "--json"]));
    });
  }
  const median = (ms: Measured[]): Measured => {
    const sorted = [...ms].sort((a, b) => a.seconds - b.seconds);
    return sorted[Math.floor(sorted.length / 2)] as Measured;
  };
  return samples.map((byName) => Object.fromEntries([...byName].map(([name, ms]) => [name, median(ms)])));
}

const [startup, baselineStartup] = startupOf(BASELINE_CLI === undefined ? [CLI] : [CLI, BASELINE_CLI]);
const nodeAlone = measured(timed(process.execPath, ["-e", "0"]));

const fixed = startup?.score_10_rows_champion?.seconds ?? 0;
const results = [];
for (const rows of sizes) {
  const data = join(WORK, `customers-${rows}.parquet`);
  if (!existsSync(data)) trainer(["synth", "--rows", String(rows), "--seed", "2", "--out", data]);
  const out = join(WORK, `scores-${rows}.parquet`);
  freshStore();
  const score = churnops(["score", "--data", data, "--json"]);
  const runId = (JSON.parse(score.stdout) as { run_id: string }).run_id;
  const drift = churnops(["monitor", "drift", "--run", runId, "--json"]);
  const driftBundle = churnops(["monitor", "drift", "--run", runId, "--bundle", bundleDir, "--json"]);
  freshStore();
  const scoreOut = churnops(["score", "--data", data, "--out", out]);
  const original = timed(PY, [join(ROOT, "benchmarks", "original_scoring.py"), trainData, data, join(WORK, `original-${rows}.parquet`)]);
  const originalOwn = JSON.parse(original.stdout) as { seconds: number };
  const speedup = (m: Measured) => Number((original.seconds / m.seconds).toFixed(2));
  // The original's whole process trains its model first; against its scoring loop alone (no start-up, no
  // training, no store) is the comparison least kind to churnops.
  const speedupVsLoop = (m: Measured) => Number((originalOwn.seconds / m.seconds).toFixed(2));
  results.push({
    rows,
    "churnops score --data c.parquet": { ...measured(score), speedup_vs_original: speedup(score), speedup_vs_original_scoring_loop: speedupVsLoop(score) },
    "churnops score --data c.parquet --out s.parquet": {
      ...measured(scoreOut),
      speedup_vs_original: speedup(scoreOut),
      speedup_vs_original_scoring_loop: speedupVsLoop(scoreOut),
    },
    "churnops monitor drift --run <that run>": measured(drift),
    "churnops monitor drift --run <that run> --bundle <dir>": measured(driftBundle),
    // Its whole process trains the original recipe first; `scoring_seconds` is its own timing of the scoring loop.
    original_get_dummies_predict_proba: { ...measured(original), scoring_seconds: originalOwn.seconds },
    // What is left once the fixed start-up cost (a 10-row score) is taken out.
    variable_seconds: {
      score: Number((score.seconds - fixed).toFixed(2)),
      score_with_out: Number((scoreOut.seconds - fixed).toFixed(2)),
    },
  });
  for (const f of [out, join(WORK, `original-${rows}.parquet`)]) rmSync(f, { force: true });
}
freshStore();
console.log(
  JSON.stringify(
    {
      benchmark: "score_commands",
      machine: { cpus: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30), load_1m_at_end: Number((loadavg()[0] ?? 0).toFixed(2)) },
      cli: CLI,
      node_alone: nodeAlone,
      startup,
      ...(BASELINE_CLI === undefined ? {} : { baseline: { cli: BASELINE_CLI, startup: baselineStartup } }),
      results,
    },
    null,
    2,
  ),
);
