/**
 * API latency and throughput, ours against the original api.py, in one run on this machine. Prints JSON.
 *   (a) sequential single requests over one keep-alive connection: p50 / p99
 *   (b) autocannon at 16 and 64 connections: requests/s, p50 / p99, errors
 *   (c) one 1,000-customer batch: latency
 *   (d) fairness (ours): sequential single requests alone, then again while another client (autocannon, its own
 *       process, one connection) loops 1,000-customer batches; p99 with the batch client within 2× of p99 without
 *   (e) explanations (ours, issue #17): autocannon at 16 connections on /v1/predict?explain=false and on
 *       /v1/predict (explanations with 4 reasons, the default), interleaved, twice each; p99 within 1 ms
 * Usage: node --import tsx benchmarks/api_latency.ts [--duration 10] [--skip-original] [--fairness-only] [--explain-only]
 * Env: CHURNOPS_BENCH_BUNDLE=<dir> to use an existing bundle instead of training one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { autocannon, customers, loadGenerator, log, type Served, startOriginal, startOurs, summary, trainBundle } from "./api_common.js";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const DURATION_S = Number(flag("--duration") ?? "10");
const FAIRNESS_ONLY = args.includes("--fairness-only");
const EXPLAIN_ONLY = args.includes("--explain-only");
const SKIP_ORIGINAL = args.includes("--skip-original") || FAIRNESS_ONLY || EXPLAIN_ONLY;

interface Target {
  served: Served;
  single: { path: string; body: (i: number) => string };
  batch: { path: string; body: string };
  sequentialRequests: number;
  batchRuns: number;
}

async function post(url: string, headers: Record<string, string>, body: string): Promise<number> {
  const send = () => fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  // A pooled keep-alive connection may have been closed by the server while autocannon ran (uvicorn closes idle
  // connections after 5 s): retry once on a fresh one.
  const res = await send().catch(() => send());
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return text.length;
}

async function sequential(t: Target): Promise<ReturnType<typeof summary> & { requests_per_s: number }> {
  const url = `${t.served.url}${t.single.path}`;
  for (let i = 0; i < 200; i++) await post(url, t.served.headers, t.single.body(i));
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < t.sequentialRequests; i++) {
    const s = performance.now();
    await post(url, t.served.headers, t.single.body(i));
    times.push(performance.now() - s);
  }
  return { ...summary(times), requests_per_s: Math.round(t.sequentialRequests / ((performance.now() - started) / 1000)) };
}

async function cannon(t: Target, connections: number): Promise<Record<string, number>> {
  const r = await autocannon(t.served, t.single.path, t.single.body(1), connections, DURATION_S);
  return {
    connections,
    duration_s: DURATION_S,
    requests_per_s: Math.round(r.requests.average),
    requests_total: r.requests.total,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    mean_ms: r.latency.average,
    max_ms: r.latency.max,
    errors: r.errors + r.timeouts,
    non_2xx: r.non2xx,
  };
}

async function batch(t: Target): Promise<ReturnType<typeof summary>> {
  const url = `${t.served.url}${t.batch.path}`;
  await post(url, t.served.headers, t.batch.body);
  const times: number[] = [];
  for (let i = 0; i < t.batchRuns; i++) {
    const s = performance.now();
    await post(url, t.served.headers, t.batch.body);
    times.push(performance.now() - s);
  }
  return summary(times);
}

/** Sequential single requests for `ms` milliseconds (after a short warm-up), timed one by one. */
async function singlesFor(t: Target, ms: number): Promise<ReturnType<typeof summary>> {
  const url = `${t.served.url}${t.single.path}`;
  for (let i = 0; i < 100; i++) await post(url, t.served.headers, t.single.body(i));
  const times: number[] = [];
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    const s = performance.now();
    await post(url, t.served.headers, t.single.body(i));
    times.push(performance.now() - s);
  }
  return summary(times);
}

const FAIRNESS_SECONDS = 8;

/**
 * Single predictions with and without a concurrent batch client. The batch client is autocannon in its own
 * process on one connection, so it sends the next 1,000-customer batch as soon as the last one is answered and
 * shares nothing with this process's event loop (which times the singles). The singles start a second after it
 * and stop a second before it does, so every one of them overlaps it.
 */
async function fairness(t: Target): Promise<Record<string, unknown>> {
  const alone = await singlesFor(t, FAIRNESS_SECONDS * 1000);
  const batches = autocannon(t.served, t.batch.path, t.batch.body, 1, FAIRNESS_SECONDS + 3);
  await new Promise((r) => setTimeout(r, 1000));
  const busy = await singlesFor(t, FAIRNESS_SECONDS * 1000);
  const b = await batches;
  const ratio = Math.round((busy.p99_ms / alone.p99_ms) * 100) / 100;
  return {
    seconds_each: FAIRNESS_SECONDS,
    singles_alone: alone,
    singles_with_batch_client: busy,
    batch_client: {
      connections: 1,
      customers_per_batch: 1000,
      batches_per_s: Math.round(b.requests.average * 10) / 10,
      p50_ms: b.latency.p50,
      p99_ms: b.latency.p99,
      errors: b.errors + b.timeouts + b.non2xx,
    },
    p99_ratio: ratio,
    goal: { value: ratio, goal: "<= 2", met: ratio <= 2 },
  };
}

/** p99 at 16 connections without and with explanations, interleaved (drift in load hits both alike); worst run each. */
async function explanations(t: Target): Promise<Record<string, unknown>> {
  const body = t.single.body(1);
  await autocannon(t.served, t.single.path, body, 16, 2);
  const runs: { without: number[]; with_explanations: number[] } = { without: [], with_explanations: [] };
  for (let round = 0; round < 2; round++) {
    for (const [name, query] of [
      ["without", "?explain=false"],
      ["with_explanations", ""],
    ] as const) {
      const r = await autocannon(t.served, `${t.single.path}${query}`, body, 16, DURATION_S);
      if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${t.single.path}${query}: ${r.errors} errors, ${r.non2xx} non-2xx`);
      runs[name].push(r.latency.p99);
    }
  }
  const without = Math.max(...runs.without);
  const withExplanations = Math.max(...runs.with_explanations);
  const difference = Math.round((withExplanations - without) * 100) / 100;
  return {
    connections: 16,
    duration_s: DURATION_S,
    p99_ms_runs: runs,
    p99_ms_without: without,
    p99_ms_with_explanations: withExplanations,
    difference_ms: difference,
    goal: { value: difference, goal: "<= 1 ms", met: difference <= 1 },
  };
}

async function measure(t: Target): Promise<Record<string, unknown>> {
  if (EXPLAIN_ONLY) {
    log(`${t.served.name}: p99 at 16 connections with and without explanations`);
    return { explanations_16: await explanations(t) };
  }
  if (FAIRNESS_ONLY) {
    log(`${t.served.name}: singles with and without a batch client`);
    return { fairness: await fairness(t) };
  }
  log(`${t.served.name}: sequential`);
  const seq = await sequential(t);
  log(`${t.served.name}: autocannon 16`);
  const c16 = await cannon(t, 16);
  log(`${t.served.name}: autocannon 64`);
  const c64 = await cannon(t, 64);
  log(`${t.served.name}: 1,000-customer batch`);
  const b = await batch(t);
  log(`${t.served.name}: singles with and without a batch client`);
  const fair = await fairness(t);
  if (t.served.name !== "churnops") return { sequential: seq, autocannon_16: c16, autocannon_64: c64, batch_1000: b, fairness: fair };
  log(`${t.served.name}: p99 at 16 connections with and without explanations`);
  const expl = await explanations(t);
  return { sequential: seq, autocannon_16: c16, autocannon_64: c64, batch_1000: b, fairness: fair, explanations_16: expl };
}

const load1m = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;

async function main(): Promise<void> {
  const loadAtStart = load1m();
  const work = mkdtempSync(join(tmpdir(), "churnops-bench-api-"));
  const rows = customers(1000);
  const results: Record<string, unknown> = {};
  try {
    const bundle = trainBundle(work);
    const ours = await startOurs(work, bundle);
    try {
      results.churnops = await measure({
        served: ours,
        single: { path: "/v1/predict", body: (i) => JSON.stringify({ ...rows[i % rows.length], customer_id: `c-${i}` }) },
        batch: { path: "/v1/predict/batch", body: JSON.stringify({ customers: rows }) },
        sequentialRequests: 3000,
        batchRuns: 50,
      });
    } finally {
      await ours.stop();
    }
    if (!SKIP_ORIGINAL) {
      const original = await startOriginal(work);
      try {
        results.original = await measure({
          served: original,
          single: { path: "/predict", body: (i) => JSON.stringify(rows[i % rows.length]) },
          batch: { path: "/predict/batch", body: JSON.stringify(rows) },
          sequentialRequests: 1000,
          batchRuns: 3,
        });
      } finally {
        await original.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const ours = results.churnops as {
    autocannon_16?: { requests_per_s: number; p99_ms: number };
    batch_1000?: { p50_ms: number };
    fairness?: { goal: { value: number; goal: string; met: boolean } };
    explanations_16?: { goal: { value: number; goal: string; met: boolean } };
  };
  const original = results.original as { autocannon_16: { requests_per_s: number } } | undefined;
  const speedup =
    original === undefined || ours.autocannon_16 === undefined
      ? null
      : Math.round((ours.autocannon_16.requests_per_s / original.autocannon_16.requests_per_s) * 10) / 10;
  const report = {
    benchmark: "api_latency",
    machine: { cpus: cpus().length, load_average_1m_at_start: loadAtStart, load_average_1m_at_end: load1m(), node: process.version },
    load_generator: loadGenerator(),
    ...results,
    goals: {
      ...(ours.autocannon_16 === undefined || ours.batch_1000 === undefined
        ? {}
        : {
            throughput_16_vs_original: { value: speedup, goal: ">= 20", met: speedup === null ? null : speedup >= 20 },
            p99_16_ms: { value: ours.autocannon_16.p99_ms, goal: "<= 5", met: ours.autocannon_16.p99_ms <= 5 },
            batch_1000_p50_ms: { value: ours.batch_1000.p50_ms, goal: "<= 25", met: ours.batch_1000.p50_ms <= 25 },
          }),
      ...(ours.fairness === undefined ? {} : { single_p99_with_batch_client_vs_without: ours.fairness.goal }),
      ...(ours.explanations_16 === undefined ? {} : { p99_16_with_explanations_minus_without_ms: ours.explanations_16.goal }),
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

await main();
