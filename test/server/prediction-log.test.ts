import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { PredictionLog, type PredictionRecord } from "../../src/server/prediction-log.js";
import { openStore } from "../../src/store/db.js";
import { countRows, storeTargets } from "../helpers/stores.js";

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
    };
    const log = await PredictionLog.open(store, { flushMs: 20, flushRows: 10_000, maxBuffer: 10_000 }, createLogger({ test: true }, "silent"), hooks);
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
