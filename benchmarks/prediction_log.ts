/**
 * The API's prediction log on its own: how fast its writer thread stores predictions, and whether it keeps up with
 * an offered load, on SQLite and PostgreSQL. Nothing else runs (no HTTP, no model). Prints one JSON object.
 *   capacity: `--rows` predictions appended at once, then close(); rows/s = rows / (time until close() returns)
 *   offered:  `--rate` predictions a second for `--seconds`, in 1,000-row requests (as a batch client sends them),
 *             through the log's production settings (flush 250 ms / 500 rows, max_buffer 200,000); then close().
 *             Reports the largest buffer seen, rows dropped, the time answers waited for room, rows in the store.
 * Usage: node --import tsx benchmarks/prediction_log.ts [--rows 300000] [--rate 50000] [--seconds 10] [--store sqlite|postgres|both]
 * Env: CHURNOPS_BENCH_PG (default postgresql://root@127.0.0.1:5432/test; a schema per run, dropped at the end).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createLogger } from "../src/log.js";
import { PredictionLog, type PredictionLogHooks, type PredictionRecord } from "../src/server/prediction-log.js";
import { openStore, type Store } from "../src/store/db.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const ROWS = Number(flag("--rows", "300000"));
const RATE = Number(flag("--rate", "50000"));
const SECONDS = Number(flag("--seconds", "10"));
const STORES = flag("--store", "both") === "both" ? ["sqlite", "postgres"] : [flag("--store", "both")];
const PG_URL = process.env.CHURNOPS_BENCH_PG ?? "postgresql://root@127.0.0.1:5432/test";
const REQUEST_ROWS = 1000;

function rows(n: number, request: string): PredictionRecord[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    request_id: request,
    customer_id: `c-${i}`,
    variant: "champion",
    model_name: "churn",
    model_version: "1",
    probability: (i % 1000) / 1000,
    band: "medium",
    decision: i % 2,
    latency_ms: 12.5,
    shadow: 0,
    created_at: createdAt,
  }));
}

interface Counts {
  written: number;
  dropped: number;
  maxBuffered: number;
}

function hooks(c: Counts): PredictionLogHooks {
  return {
    written: (n) => {
      c.written += n;
    },
    dropped: (n) => {
      c.dropped += n;
    },
    buffered: (n) => {
      if (n > c.maxBuffered) c.maxBuffered = n;
    },
    failed: () => undefined,
    rejected: () => undefined,
    refused: () => undefined,
  } as PredictionLogHooks;
}

async function freshStore(kind: string): Promise<{ store: Store; drop(): Promise<void> }> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "churnops-bench-plog-"));
    const store = await openStore(`sqlite://${join(dir, "store.db")}`);
    return { store, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `bench_plog_${process.pid}_${Date.now()}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const store = await openStore(`${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`);
  return {
    store,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function count(store: Store): Promise<number> {
  const r = await store.db
    .selectFrom("predictions")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

const OPTIONS = { flushMs: 250, flushRows: 500, maxBuffer: 200_000, waitMs: 5000 };
const quiet = createLogger({ test: true }, "silent");

async function capacity(kind: string): Promise<Record<string, number>> {
  const { store, drop } = await freshStore(kind);
  try {
    const c: Counts = { written: 0, dropped: 0, maxBuffered: 0 };
    const log = await PredictionLog.open(store, { ...OPTIONS, maxBuffer: ROWS + 1 }, quiet, hooks(c));
    const all = rows(ROWS, "capacity");
    const started = performance.now();
    for (let i = 0; i < ROWS; i += REQUEST_ROWS) log.append(all.slice(i, i + REQUEST_ROWS));
    await log.close();
    const seconds = (performance.now() - started) / 1000;
    return { rows: ROWS, seconds: Math.round(seconds * 100) / 100, rows_per_s: Math.round(ROWS / seconds), stored: await count(store), dropped: c.dropped };
  } finally {
    await store.close();
    await drop();
  }
}

async function offered(kind: string): Promise<Record<string, number>> {
  const { store, drop } = await freshStore(kind);
  try {
    const c: Counts = { written: 0, dropped: 0, maxBuffered: 0 };
    const log = await PredictionLog.open(store, OPTIONS, quiet, hooks(c));
    const take = (r: PredictionRecord[]): Promise<void> =>
      typeof (log as { accept?: unknown }).accept === "function" ? log.accept(r) : Promise.resolve(log.append(r));
    const every = (REQUEST_ROWS / RATE) * 1000;
    const started = performance.now();
    let sent = 0;
    let waitedMs = 0;
    const requests: Promise<void>[] = [];
    for (let i = 0; performance.now() - started < SECONDS * 1000; i++) {
      const due = started + i * every;
      const now = performance.now();
      if (due > now) await new Promise((r) => setTimeout(r, due - now));
      const s = performance.now();
      requests.push(
        take(rows(REQUEST_ROWS, `r-${i}`)).then(() => {
          waitedMs += performance.now() - s;
        }),
      );
      sent += REQUEST_ROWS;
    }
    await Promise.all(requests);
    const sendSeconds = (performance.now() - started) / 1000;
    const closing = performance.now();
    await log.close();
    return {
      offered_rows_per_s: RATE,
      sent,
      achieved_rows_per_s: Math.round(sent / sendSeconds),
      max_buffered: c.maxBuffered,
      dropped: c.dropped,
      written_before_close: c.written,
      close_seconds: Math.round((performance.now() - closing) / 10) / 100,
      mean_wait_for_room_ms: Math.round((waitedMs / requests.length) * 100) / 100,
      stored: await count(store),
    };
  } finally {
    await store.close();
    await drop();
  }
}

const result: Record<string, unknown> = {
  benchmark: "prediction_log",
  machine: { cpus: cpus().length, load_average_1m_at_start: loadavg()[0], node: process.version },
};
for (const kind of STORES) result[kind] = { capacity: await capacity(kind), offered: await offered(kind) };
(result.machine as Record<string, unknown>).load_average_1m_at_end = loadavg()[0];
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
