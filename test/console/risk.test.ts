import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isChurnopsError } from "../../src/errors.js";
import { openStore, type Store } from "../../src/store/db.js";
import { customerView } from "../../src/store/read/customer.js";
import { overview, RISK_BINS } from "../../src/store/read/overview.js";
import { iterateRisk, parseRiskFilter, type RiskFilter, type RiskRow, riskPage } from "../../src/store/read/risk.js";
import { type SeededRun, seedRun } from "../campaigns/seed.js";
import { storeTargets } from "../helpers/stores.js";
import { addUsers, Client, type ConsoleServer, startConsole } from "./helpers.js";

/** The rows a filter means, computed from the seeded data itself (not from the store). */
function expected(run: SeededRun, f: RiskFilter): { customer_id: string; probability: number; band: string }[] {
  return run.customers
    .filter((c) => (f.band === undefined || c.band === f.band) && (f.min_p === undefined || c.probability >= f.min_p))
    .filter((c) => (f.max_p === undefined || c.probability <= f.max_p) && (f.q === undefined || c.id.includes(f.q)))
    .sort((a, b) => b.probability - a.probability || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((c) => ({ customer_id: c.id, probability: c.probability, band: c.band }));
}

function parseCsv(text: string): Record<string, string>[] {
  const [header = "", ...lines] = text.trimEnd().split("\n");
  const names = header.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((v, i) => [names[i], v])));
}

describe.each(storeTargets)("risk list and read models ($name)", (target) => {
  let store: Store;
  let server: ConsoleServer;
  let older: SeededRun;
  let latest: SeededRun;
  beforeAll(async () => {
    store = await openStore(await target.fresh());
    older = await seedRun(store, { n: 700, asOf: "2026-10-01", seed: 3 });
    latest = await seedRun(store, { n: 900, asOf: "2026-11-01", seed: 4 });
    await addUsers(store);
    server = await startConsole(store);
  });
  afterAll(async () => {
    await server.close();
    await store.close();
  });

  it("pages through exactly the filtered rows with keyset cursors, in order, each once", async () => {
    for (const query of [{}, { band: "high" }, { min_p: "0.2", max_p: "0.5" }, { q: "c001" }, { band: "medium", q: "5" }]) {
      const filter = parseRiskFilter(query);
      const seen: RiskRow[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await riskPage(store, filter, { after, limit: 37 });
        seen.push(...page.rows);
        if (page.next === null) break;
        after = page.next;
      }
      expect(
        seen.map((r) => ({ customer_id: r.customer_id, probability: r.probability, band: r.band })),
        JSON.stringify(query),
      ).toEqual(expected(latest, filter));
      expect(new Set(seen.map((r) => r.run_id))).toEqual(new Set(seen.length > 0 ? [latest.runId] : []));
    }
  });

  it("finds ids containing the search text exactly, case-sensitive, whatever characters the ids and the text hold", async () => {
    const odd = ["AB%CD-1", "ab%cd-2", 'x_yz"q', "back\\slash", "C0001", "c0001-x", "日本語ID-7", "a'b'c", "%%%", "___"];
    const ids = [...odd, ...Array.from({ length: 400 }, (_, k) => `K${String(k).padStart(4, "0")}-${k % 7 === 0 ? "AB" : "zz"}`)];
    const run = await seedRun(store, { n: ids.length, asOf: "2026-08-15", seed: 11, ids });
    for (const q of ["%CD", "b%c", '_yz"', "k\\s", "C00", "c00", "日本語", "zzzz", "-AB", "%%%", "___", "'b'", "0001", "K0", "%", "_", "AB"]) {
      const filter = parseRiskFilter({ run: run.runId, q });
      const seen: string[] = [];
      for await (const page of iterateRisk(store, filter, 25)) seen.push(...page.map((r) => r.customer_id));
      expect(seen, q).toEqual(expected(run, filter).map((r) => r.customer_id));
      // The page read agrees with the export's read.
      const first = await riskPage(store, filter, { limit: 10 });
      expect(
        first.rows.map((r) => r.customer_id),
        q,
      ).toEqual(seen.slice(0, 10));
    }
  });

  it("orders by id both ways and by lowest risk, across pages", async () => {
    for (const sort of ["id_asc", "id_desc", "risk_asc"] as const) {
      const filter = parseRiskFilter({ sort, band: "low" });
      const ids: string[] = [];
      for await (const page of iterateRisk(store, filter, 50)) ids.push(...page.map((r) => r.customer_id));
      const want = expected(latest, filter);
      if (sort === "id_asc") want.sort((a, b) => (a.customer_id < b.customer_id ? -1 : 1));
      if (sort === "id_desc") want.sort((a, b) => (a.customer_id < b.customer_id ? 1 : -1));
      if (sort === "risk_asc") want.sort((a, b) => a.probability - b.probability || (a.customer_id < b.customer_id ? -1 : 1));
      expect(ids, sort).toEqual(want.map((w) => w.customer_id));
    }
  });

  it("refuses a bad filter naming the field", () => {
    for (const [query, field] of [
      [{ min_p: "2" }, "min_p"],
      [{ max_p: "abc" }, "max_p"],
      [{ min_p: "0.8", max_p: "0.2" }, "min_p"],
      [{ sort: "random" }, "sort"],
    ] as const) {
      try {
        parseRiskFilter(query);
        expect.unreachable();
      } catch (err) {
        expect(isChurnopsError(err) && err.field).toBe(field);
      }
    }
  });

  it("exports exactly the store's rows for the page's filter as CSV, for the latest run or a named one", async () => {
    const c = new Client(server.base);
    await c.signIn("viewer");
    for (const query of [{ band: "high", q: "1" }, { run: older.runId, min_p: "0.4" }, { run: "latest" }] as Record<string, string>[]) {
      const res = await c.get(`/risk.csv?${new URLSearchParams(query).toString()}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
      const rows = parseCsv(await res.text());
      const filter = parseRiskFilter(query);
      const fromStore: RiskRow[] = [];
      for await (const page of iterateRisk(store, filter)) fromStore.push(...page);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows).toEqual(
        fromStore.map((r) => ({
          customer_id: r.customer_id,
          probability: String(r.probability),
          band: r.band,
          decision: String(r.decision),
          run_id: r.run_id,
          model_version: r.model_version,
        })),
      );
      expect(rows.map((r) => r.customer_id)).toEqual(expected(query.run === older.runId ? older : latest, filter).map((e) => e.customer_id));
    }
  });

  it("answers a bad filter or an unknown run with a 4xx page, not a broken download", async () => {
    const c = new Client(server.base);
    await c.signIn("viewer");
    const bad = await c.get("/risk.csv?min_p=7");
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("min_p");
    expect((await c.get("/risk.csv?run=no-such-run")).status).toBe(404);
    expect((await c.get("/risk?after=garbage")).status).toBe(400);
  });

  it("shows the overview: latest run, bands with the change since the previous run, the distribution", async () => {
    const view = await overview(store);
    expect(view.latest?.run_id).toBe(latest.runId);
    expect(view.previous?.run_id).toBe(older.runId);
    const count = (run: SeededRun, band: string) => run.customers.filter((x) => x.band === band).length;
    for (const b of view.bands) {
      expect(b.n).toBe(count(latest, b.band));
      expect(b.change).toBe(count(latest, b.band) - count(older, b.band));
    }
    expect(view.distribution).toHaveLength(RISK_BINS);
    expect(view.distribution.reduce((a, b) => a + b, 0)).toBe(latest.customers.length);
    const top = latest.customers.filter((x) => x.probability >= 0.95).length;
    expect(view.distribution[RISK_BINS - 1]).toBe(top);
  });

  it("shows a customer's history across runs and its band changes", async () => {
    const moved = latest.customers.find((x) => older.customers.find((o) => o.id === x.id)?.band !== x.band) as SeededRun["customers"][number];
    const view = await customerView(store, moved.id);
    expect(view?.scores.map((s) => s.run_id)).toEqual([older.runId, latest.runId]);
    expect(view?.bandChanges).toEqual([{ as_of: "2026-11-01", from: older.customers.find((o) => o.id === moved.id)?.band, to: moved.band }]);
    expect(await customerView(store, "never-seen")).toBeNull();
    const c = new Client(server.base);
    await c.signIn("viewer");
    const page = await c.get(`/customers/${moved.id}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("<svg");
    expect(html).toContain("kept its input values");
    expect((await c.get("/customers/never-seen")).status).toBe(404);
  });
});
