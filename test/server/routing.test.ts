import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { up } from "../../src/store/migrations/002_predictions.js";
import { storeTargets } from "../helpers/stores.js";
import { batchFor, copyBundle, customer, predict, predictBatch, startApp, type TestApp } from "./helpers.js";

interface Result {
  customer_id: string;
  variant: string;
  model: { version: string };
  churn_probability: number;
}

describe("champion / challenger split", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("answers a deterministic share of customers from the challenger, close to the configured share", async () => {
    t = await startApp({ champion: copyBundle("10"), challenger: copyBundle("11"), server: { challenger_share: 0.3, batch_limit: 1000 } });
    const customers = batchFor(1000);
    const first = JSON.parse((await predictBatch(t.app, customers)).body).predictions as Result[];
    const share = first.filter((p) => p.variant === "challenger").length / first.length;
    // ±4 standard deviations of a binomial share over 1,000 customers.
    expect(Math.abs(share - 0.3)).toBeLessThan(4 * Math.sqrt((0.3 * 0.7) / 1000));
    for (const p of first) expect(p.model.version).toBe(p.variant === "challenger" ? "11" : "10");
    // The same customer gets the same variant again, alone or in another batch order.
    const again = JSON.parse((await predictBatch(t.app, [...customers].reverse())).body).predictions as Result[];
    const byId = new Map(first.map((p) => [p.customer_id, p.variant]));
    for (const p of again) expect(p.variant).toBe(byId.get(p.customer_id));
    for (const c of customers.slice(0, 20)) {
      const single = JSON.parse((await predict(t.app, c)).body) as Result;
      expect(single.variant).toBe(byId.get(single.customer_id));
    }
  });

  it("keeps every customer's variant across a restart with the same salt, and re-draws with another", async () => {
    const customers = batchFor(300);
    const variants = async (salt: string): Promise<string[]> => {
      const app = await startApp({ champion: copyBundle("10"), challenger: copyBundle("11"), server: { challenger_share: 0.5, assignment_salt: salt } });
      try {
        const res = await predictBatch(app.app, customers);
        return (JSON.parse(res.body).predictions as Result[]).map((p) => p.variant);
      } finally {
        await app.close();
      }
    };
    const a = await variants("exp-1");
    expect(await variants("exp-1")).toEqual(a);
    const b = await variants("exp-2");
    expect(b.filter((v, i) => v !== a[i]).length).toBeGreaterThan(50);
  });
});

describe.each(storeTargets)("predictions in the $name store", (target) => {
  let store: Store | undefined;
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    await store?.close();
    t = undefined;
    store = undefined;
  });

  it("logs every prediction with request id, variant, version, probability, band and latency", async () => {
    store = await openStore(await target.fresh());
    t = await startApp({ store, server: { prediction_log: { enabled: true, flush_ms: 60_000, flush_rows: 10_000, max_buffer: 100_000, wait_ms: 5000 } } });
    const single = await predict(t.app, customer("solo"));
    const batch = await predictBatch(t.app, batchFor(25));
    expect(batch.statusCode).toBe(200);
    await predict(t.app, customer("bad", { tenure_months: -1 }));
    await t.close();
    t = undefined;
    const rows = await store.db.selectFrom("predictions").selectAll().orderBy("customer_id").execute();
    expect(rows).toHaveLength(26);
    const solo = rows.find((r) => r.customer_id === "solo");
    const answered = JSON.parse(single.body) as Result & { risk_band: string; decision: boolean };
    expect(solo).toMatchObject({
      request_id: single.headers["x-request-id"],
      variant: "champion",
      model_name: "churn",
      model_version: answered.model.version,
      band: answered.risk_band,
      decision: answered.decision ? 1 : 0,
      shadow: 0,
    });
    expect(solo?.probability).toBeCloseTo(answered.churn_probability, 12);
    expect(solo?.latency_ms).toBeGreaterThan(0);
    expect(new Set(rows.filter((r) => r.customer_id !== "solo").map((r) => r.request_id))).toEqual(new Set([batch.headers["x-request-id"]]));
    expect(rows.some((r) => r.customer_id === "bad")).toBe(false);
  });

  it("writes predictions in the background before shutdown, once the flush interval passes", async () => {
    store = await openStore(await target.fresh());
    t = await startApp({ store, server: { prediction_log: { enabled: true, flush_ms: 50, flush_rows: 10_000, max_buffer: 100_000, wait_ms: 5000 } } });
    await predictBatch(t.app, batchFor(10));
    const s = store;
    await expect.poll(async () => (await s.db.selectFrom("predictions").select("id").execute()).length, { timeout: 5000 }).toBe(10);
  });

  it("keeps the predictions a store refuses, counts the failed writes, and writes them all once it takes them again", async () => {
    store = await openStore(await target.fresh());
    const s = store;
    await s.db.schema.dropTable("predictions").execute();
    t = await startApp({ store, server: { prediction_log: { enabled: true, flush_ms: 50, flush_rows: 10_000, max_buffer: 100_000, wait_ms: 5000 } } });
    const app = t.app;
    const metric = async (name: string): Promise<number> => {
      const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
      return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    };
    expect((await predictBatch(app, batchFor(12))).statusCode).toBe(200);
    await expect.poll(() => metric("churnops_prediction_log_write_failures_total"), { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    expect(await metric("churnops_prediction_log_buffered")).toBe(12);
    expect(await metric("churnops_prediction_log_written_total")).toBe(0);
    await up(s.db as unknown as Kysely<unknown>);
    // The writer thread commits before its reply reaches this thread, so the rows can be visible a moment before
    // the counter moves: wait for the counter, then check the rows.
    await expect.poll(() => metric("churnops_prediction_log_written_total"), { timeout: 5000 }).toBe(12);
    expect((await s.db.selectFrom("predictions").select("id").execute()).length).toBe(12);
    expect(await metric("churnops_prediction_log_buffered")).toBe(0);
    expect(await metric("churnops_prediction_log_dropped_total")).toBe(0);
  });

  it("in shadow mode answers from the champion and logs both models' scores", async () => {
    store = await openStore(await target.fresh());
    t = await startApp({ store, champion: copyBundle("20"), challenger: copyBundle("21"), server: { shadow: true } });
    const res = await predictBatch(t.app, batchFor(40));
    const answered = JSON.parse(res.body).predictions as Result[];
    expect(new Set(answered.map((p) => p.variant))).toEqual(new Set(["champion"]));
    expect(new Set(answered.map((p) => p.model.version))).toEqual(new Set(["20"]));
    await t.close();
    t = undefined;
    const rows = await store.db.selectFrom("predictions").selectAll().where("request_id", "=", String(res.headers["x-request-id"])).execute();
    expect(rows).toHaveLength(80);
    const champion = rows.filter((r) => r.shadow === 0);
    const shadow = rows.filter((r) => r.shadow === 1);
    expect(new Set(champion.map((r) => `${r.variant}/${r.model_version}`))).toEqual(new Set(["champion/20"]));
    expect(new Set(shadow.map((r) => `${r.variant}/${r.model_version}`))).toEqual(new Set(["challenger/21"]));
    expect(new Set(shadow.map((r) => r.customer_id))).toEqual(new Set(champion.map((r) => r.customer_id)));
  });
});

describe("predictions in an in-memory SQLite store", () => {
  it("are written from the API's own thread, the only one that can see that store", async () => {
    const store = await openStore("sqlite::memory:");
    const t = await startApp({
      store,
      server: { prediction_log: { enabled: true, flush_ms: 60_000, flush_rows: 10_000, max_buffer: 100_000, wait_ms: 5000 } },
    });
    expect((await predictBatch(t.app, batchFor(7))).statusCode).toBe(200);
    await t.close();
    expect(await store.db.selectFrom("predictions").select("id").execute()).toHaveLength(7);
    await store.close();
  });
});
