import type { Kysely } from "kysely";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { PredictionLog, type PredictionRecord } from "../../src/server/prediction-log.js";
import { openStore } from "../../src/store/db.js";
import { up } from "../../src/store/migrations/002_predictions.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { batchFor, type ErrorJson, predictBatch, startApp, type TestApp } from "./helpers.js";

function row(id: string, customerId = `c-${id}`): PredictionRecord {
  return {
    id,
    request_id: `r-${id}`,
    customer_id: customerId,
    variant: "champion",
    model_name: "churn",
    model_version: "1",
    probability: 0.5,
    band: "medium",
    decision: 1,
    latency_ms: 1,
    shadow: 0,
    created_at: new Date().toISOString(),
  };
}

describe.each(storeTargets)("a row the store refuses, on $name", (target) => {
  it("is set aside and counted after retries; every other row is written", async () => {
    const store = await openStore(await target.fresh());
    const counts = { written: 0, rejected: 0, dropped: 0 };
    const hooks = {
      written: (n: number) => {
        counts.written += n;
      },
      rejected: (n: number) => {
        counts.rejected += n;
      },
      dropped: (n: number) => {
        counts.dropped += n;
      },
      buffered: () => undefined,
      failed: () => undefined,
      refused: () => undefined,
    };
    const log = await PredictionLog.open(
      store,
      { flushMs: 20, flushRows: 10_000, maxBuffer: 10_000, waitMs: 5000 },
      createLogger({ test: true }, "silent"),
      hooks,
    );
    try {
      log.append([row("first")]);
      await expect.poll(() => counts.written, { timeout: 5000 }).toBe(1);
      // A repeated primary key fails on both stores; a NUL in text fails on PostgreSQL (SQLite stores it).
      const bad = [row("first"), ...(target.name === "postgres" ? [row("nul", "a\u0000b")] : [])];
      const good = Array.from({ length: 40 }, (_, i) => row(`g${i}`));
      log.append([...good.slice(0, 17), ...bad, ...good.slice(17)]);
      await expect.poll(() => counts.rejected, { timeout: 10_000 }).toBe(bad.length);
      expect(counts.written).toBe(41);
      log.append([row("later")]);
      await expect.poll(() => counts.written, { timeout: 5000 }).toBe(42);
      expect(await countRows(store, "predictions")).toBe(42);
      expect(counts.dropped).toBe(0);
    } finally {
      await log.close();
      await store.close();
    }
  });
});

/** Close the app once (a test closes it to flush the log, and again in its cleanup). */
function closeOnce(t: TestApp): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () => {
    closing ??= t.close();
    return closing;
  };
}

/** A counter of the app's metrics registry (readable after close, when /metrics no longer answers). */
async function counter(t: TestApp, name: string): Promise<number> {
  const text = await t.app.churnops.metrics.registry.getSingleMetricAsString(name);
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

describe.each(storeTargets)("a burst of predictions larger than the log's buffer, on $name", (target) => {
  it("answers every request once its rows are taken, drops none, and has every answered row stored after shutdown", async () => {
    const store = await openStore(await target.fresh());
    // 12 concurrent 250-customer batches (3,000 rows) into a log that holds 300: before backpressure, the oldest
    // rows past 300 were dropped while the requests were answered 200.
    const t = await startApp({ store, server: { prediction_log: { enabled: true, flush_ms: 60_000, flush_rows: 200, max_buffer: 300, wait_ms: 60_000 } } });
    const close = closeOnce(t);
    try {
      const answers = await Promise.all(Array.from({ length: 12 }, () => predictBatch(t.app, batchFor(250))));
      expect(answers.map((r) => r.statusCode)).toEqual(Array(12).fill(200));
      await close();
      expect(await countRows(store, "predictions")).toBe(3000);
      expect(await counter(t, "churnops_prediction_log_dropped_total")).toBe(0);
      expect(await counter(t, "churnops_prediction_log_written_total")).toBe(3000);
    } finally {
      await close();
      await store.close();
    }
  });

  it("refuses (503, nothing answered) what cannot be taken while the store is down, and writes what it took once it is back", async () => {
    const store = await openStore(await target.fresh());
    await store.db.schema.dropTable("predictions").execute();
    const t = await startApp({ store, server: { prediction_log: { enabled: true, flush_ms: 50, flush_rows: 10_000, max_buffer: 10, wait_ms: 300 } } });
    const close = closeOnce(t);
    try {
      expect((await predictBatch(t.app, batchFor(12))).statusCode).toBe(200);
      const refused = await predictBatch(t.app, batchFor(5));
      expect(refused.statusCode).toBe(503);
      expect((JSON.parse(refused.body) as ErrorJson).error.code).toBe("prediction_log_full");
      expect(await counter(t, "churnops_prediction_log_refused_total")).toBe(5);
      await up(store.db as unknown as Kysely<unknown>);
      await expect.poll(() => counter(t, "churnops_prediction_log_written_total"), { timeout: 10_000 }).toBe(12);
      // Room again: answered at once.
      expect((await predictBatch(t.app, batchFor(3))).statusCode).toBe(200);
      await close();
      expect(await countRows(store, "predictions")).toBe(15);
      expect(await counter(t, "churnops_prediction_log_dropped_total")).toBe(0);
    } finally {
      await close();
      await store.close();
    }
  });
});
