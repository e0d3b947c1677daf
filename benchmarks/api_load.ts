/**
 * Bounded load run on loopback: 64 connections for 60 s against POST /v1/predict (after a 10 s warm-up), with the
 * server's resident memory sampled every second. Bar: zero errors, and RSS at the end within 10% of RSS after
 * warm-up. Prints JSON. Usage: node --import tsx benchmarks/api_load.ts [--duration 60] [--connections 64]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { customers, log, ROOT, rssMiB, type Served, startOurs, trainBundle } from "./api_common.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DURATION_S = flag("--duration", 60);
const CONNECTIONS = flag("--connections", 64);
const WARMUP_S = flag("--warmup", 10);

interface CannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** autocannon as a child process, while `onSecond` samples the server every second. */
function load(server: Served, seconds: number, onSecond: () => void): Promise<CannonJson> {
  const body = JSON.stringify(customers(1)[0]);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(ROOT, "node_modules", "autocannon", "autocannon.js"),
        "-c",
        String(CONNECTIONS),
        "-d",
        String(seconds),
        "-j",
        "-m",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        `authorization: ${server.headers.authorization ?? ""}`,
        "-b",
        body,
        `${server.url}/v1/predict`,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    const timer = setInterval(onSecond, 1000);
    child.on("close", (code) => {
      clearInterval(timer);
      if (code !== 0) reject(new Error(`autocannon exited ${code}`));
      else resolve(JSON.parse(out) as CannonJson);
    });
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "churnops-bench-load-"));
  try {
    const server = await startOurs(work, trainBundle(work));
    try {
      const rssStart = rssMiB(server.pid);
      log(`warm-up ${WARMUP_S} s`);
      await load(server, WARMUP_S, () => undefined);
      const rssAfterWarmup = rssMiB(server.pid);
      const samples: number[] = [];
      log(`load ${DURATION_S} s at ${CONNECTIONS} connections`);
      const r = await load(server, DURATION_S, () => samples.push(rssMiB(server.pid)));
      const rssEnd = rssMiB(server.pid);
      const growth = Math.round(((rssEnd - rssAfterWarmup) / rssAfterWarmup) * 1000) / 10;
      const errors = r.errors + r.timeouts + r.non2xx;
      const report = {
        benchmark: "api_load",
        connections: CONNECTIONS,
        duration_s: DURATION_S,
        load_average_1m_at_end: Math.round((loadavg()[0] ?? 0) * 100) / 100,
        requests_total: r.requests.total,
        requests_per_s: Math.round(r.requests.average),
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        max_ms: r.latency.max,
        errors: r.errors,
        timeouts: r.timeouts,
        non_2xx: r.non2xx,
        rss_mib: { at_start: rssStart, after_warmup: rssAfterWarmup, at_end: rssEnd, max: Math.max(...samples), growth_pct: growth },
        bars: { zero_errors: errors === 0, rss_within_10pct: Math.abs(growth) <= 10 },
      };
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
