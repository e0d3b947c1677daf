/**
 * What reasons cost, measured side by side in one run on this machine. Prints one JSON object.
 *   (a) batch scoring: `churnops score --no-store --out x.parquet` on N synthetic customers, without and with
 *       `--reasons 3`, the whole command timed as a user types it (issue #17: ≥ 70% of the rows/s kept);
 *   (b) the API at 16 connections: p99 of /v1/predict?explain=false and of /v1/predict (explanations with 4
 *       reasons, the default), one server, interleaved runs (issue #17: within 1 ms).
 * Usage: node --import tsx benchmarks/reasons_throughput.ts [--rows 10000000] [--duration 10] [--skip-api]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { autocannon, customers, log, startOurs, trainBundle } from "./api_common.js";

const ROOT = join(import.meta.dirname, "..");
const PY = join(ROOT, "trainer", ".venv", "bin", "python");
const WORK = join(ROOT, ".churnops-bench");
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROWS = Number(flag("--rows") ?? "10000000");
const DURATION_S = Number(flag("--duration") ?? "10");

function trainer(argv: string[]): string {
  return execFileSync(PY, ["-m", "churnops_trainer", ...argv], {
    env: { ...process.env, CHURNOPS_HOME: join(WORK, "home") },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1 << 26,
  });
}

/** The whole command under GNU time: wall seconds and peak RSS. */
function timed(argv: string[]): { seconds: number; peak_rss_mb: number } {
  const stats = join(WORK, "reasons-time.txt");
  const res = spawnSync("/usr/bin/time", ["-f", "%e %M", "-o", stats, process.execPath, ...argv], {
    env: { ...process.env, CHURNOPS_LOG_LEVEL: "warn", CHURNOPS_HOME: join(WORK, "home") },
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (res.status !== 0) throw new Error(`${argv.join(" ")} failed: ${res.stderr}`);
  const [seconds, kb] = readFileSync(stats, "utf8").trim().split(/\s+/).slice(-2).map(Number);
  return { seconds: seconds ?? 0, peak_rss_mb: Math.round((kb ?? 0) / 1024) };
}

function batch(bundle: string): Record<string, unknown> {
  const data = join(WORK, `customers-${ROWS}.parquet`);
  if (!existsSync(data)) trainer(["synth", "--rows", String(ROWS), "--seed", "2", "--out", data]);
  const cli = join(ROOT, "bin", "churnops.js");
  const common = [cli, "score", "--data", data, "--model", bundle, "--as-of", "2026-01-01", "--no-store", "--json"];
  const plainOut = join(WORK, `scores-plain-${ROWS}.parquet`);
  const reasonsOut = join(WORK, `scores-reasons-${ROWS}.parquet`);
  log(`batch: ${ROWS} rows without reasons`);
  const plain = timed([...common, "--out", plainOut]);
  log(`batch: ${ROWS} rows with --reasons 3`);
  const reasons = timed([...common, "--out", reasonsOut, "--reasons", "3"]);
  rmSync(plainOut, { force: true });
  rmSync(reasonsOut, { force: true });
  const rate = (s: number): number => Math.round(ROWS / s);
  const kept = rate(reasons.seconds) / rate(plain.seconds);
  return {
    rows: ROWS,
    without_reasons: { ...plain, rows_per_s: rate(plain.seconds) },
    reasons_3: { ...reasons, rows_per_s: rate(reasons.seconds) },
    kept_share: Math.round(kept * 1000) / 1000,
    goal: { value: ">= 0.70", met: kept >= 0.7 },
  };
}

async function api(bundle: string): Promise<Record<string, unknown>> {
  const served = await startOurs(join(WORK, "reasons-api"), bundle);
  try {
    const body = JSON.stringify({ ...customers(1)[0], customer_id: "c-1" });
    const runs: Record<string, number[]> = { plain: [], explained: [] };
    // Interleaved, twice each, after a warm-up: drift in machine load hits both sides alike.
    await autocannon(served, "/v1/predict", body, 16, 2);
    for (let round = 0; round < 2; round++) {
      for (const [name, path] of [
        ["plain", "/v1/predict?explain=false"],
        ["explained", "/v1/predict"],
      ] as const) {
        log(`api: ${name} round ${round + 1}`);
        const r = await autocannon(served, path, body, 16, DURATION_S);
        if (r.errors > 0 || r.non2xx > 0) throw new Error(`${path}: ${r.errors} errors, ${r.non2xx} non-2xx`);
        runs[name]?.push(r.latency.p99);
      }
    }
    const p99 = (xs: number[]): number => Math.max(...xs);
    const diff = p99(runs.explained ?? []) - p99(runs.plain ?? []);
    return {
      connections: 16,
      duration_s: DURATION_S,
      p99_ms_runs: runs,
      p99_ms_without: p99(runs.plain ?? []),
      p99_ms_with_explanations: p99(runs.explained ?? []),
      difference_ms: diff,
      goal: { value: "<= 1 ms", met: diff <= 1 },
    };
  } finally {
    await served.stop();
  }
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const loadAtStart = loadavg()[0];
  const bundle = trainBundle(WORK);
  const result: Record<string, unknown> = { machine: { cpus: cpus().length, load_1m_at_start: loadAtStart } };
  if (!args.includes("--skip-api")) result.api = await api(bundle);
  if (!args.includes("--skip-batch")) result.batch = batch(bundle);
  (result.machine as Record<string, unknown>).load_1m_at_end = loadavg()[0];
  console.log(JSON.stringify(result, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
