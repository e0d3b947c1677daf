import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Config } from "../../src/config.js";
import { openStore, type Store } from "../../src/store/db.js";
import { reasonsOf, type StoredReason } from "../../src/store/read/customer-reasons.js";
import { iterateRisk, parseRiskFilter, riskPage } from "../../src/store/read/risk.js";
import { storeTargets } from "../helpers/stores.js";
import { addUsers, Client, type ConsoleServer, registryConfig, startConsole } from "./helpers.js";
import { scoreFixtureRun } from "./scored-run.js";

const fixture = inject("fixture");

/** Cells of a CSV line as the console writes them (quoted cells may hold commas). */
function cells(line: string): string[] {
  const out: string[] = [];
  const re = /("(?:[^"]|"")*"|[^,]*)(,|$)/g;
  for (let m = re.exec(line); m !== null && m.index < line.length; m = re.exec(line)) {
    const cell = m[1] ?? "";
    out.push(cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell);
    if (m[2] === "") break;
  }
  return out;
}

const decode = (html: string): string =>
  html
    .replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'");

/** The fixture's input rows (id → row), read straight from its Parquet file: the truth a filter is checked against. */
async function inputRows(): Promise<Map<string, Record<string, unknown>>> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const rows = (await conn.runAndReadAll(`SELECT * FROM '${fixture.dataPath}'`)).getRowObjectsJS() as Record<string, unknown>[];
  conn.closeSync();
  instance.closeSync();
  return new Map(rows.map((r) => [String(r.customer_id), r]));
}

describe.each(storeTargets)("reasons and feature filters in the console ($name)", (target) => {
  let store: Store;
  let server: ConsoleServer;
  let settings: Config;
  let runId: string;
  let client: Client;
  let categorical: { name: string; categories: string[] }[];

  beforeAll(async () => {
    store = await openStore(await target.fresh());
    const scored = await scoreFixtureRun(store, 3);
    runId = scored.runId;
    categorical = scored.categorical.map((f) => ({ name: f.name, categories: [...f.categories] }));
    await addUsers(store);
    settings = registryConfig(fixture);
    server = await startConsole(store, {}, settings);
    client = new Client(server.base);
    await client.signIn("viewer");
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it("draws the top customer's stored reasons as a waterfall from the model's baseline to their probability, in English and Japanese", async () => {
    const top = (await riskPage(store, { run: runId, sort: "risk_desc" }, { limit: 1 })).rows[0];
    expect(top).toBeDefined();
    const id = top?.customer_id as string;
    const stored = (await reasonsOf(store, runId, [id])).get(id) as StoredReason[];
    expect(stored.length).toBeGreaterThan(0);

    const html = decode(await (await client.get(`/customers/${encodeURIComponent(id)}?lang=en`)).text());
    expect(html).toContain("Why this customer is at risk");
    expect(html).toContain('class="chart waterfall"');
    // One bar per stored reason raises risk, plus one for every other feature (either colour).
    expect(html.match(/<rect class="raises"/g)?.length ?? 0).toBeGreaterThanOrEqual(stored.length);
    for (const r of stored) {
      expect(html).toContain(r.text);
      expect(html).toContain(`${r.label}: `);
    }
    // The bars end at the customer's own probability.
    const pct = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1, minimumFractionDigits: 1 }).format(top?.probability as number);
    expect(html).toContain(`This customer: ${pct}`);

    const ja = decode(await (await client.get(`/customers/${encodeURIComponent(id)}?lang=ja`)).text());
    expect(ja).toContain("この顧客が解約しそうな理由");
    // Stored in English, shown in Japanese: the sentence is rebuilt from the bundle's reference profile.
    expect(ja).toContain("リスクを最も高めています");
    expect(ja).not.toContain("raises risk the most");
  });

  it("shows each listed customer's top reason in the risk list", async () => {
    const page = await riskPage(store, { run: runId, sort: "risk_desc" }, { limit: 50 });
    const stored = await reasonsOf(
      store,
      runId,
      page.rows.map((r) => r.customer_id),
    );
    const html = decode(await (await client.get(`/risk?run=${encodeURIComponent(runId)}&lang=en`)).text());
    expect(html).toContain("Top reason");
    for (const row of page.rows.slice(0, 10)) {
      const first = stored.get(row.customer_id)?.[0];
      if (first === undefined) continue;
      expect(html).toContain(`title="${first.text}"`);
    }
  });

  it("exports reason_1..3 and their texts with the risk list, equal to the stored reasons of every row", async () => {
    const res = await client.get(`/risk.csv?run=${encodeURIComponent(runId)}&band=high`);
    expect(res.status).toBe(200);
    const lines = (await res.text()).trimEnd().split("\n");
    expect(cells(lines[0] as string)).toEqual([
      "customer_id",
      "probability",
      "band",
      "decision",
      "run_id",
      "model_version",
      "reason_1",
      "reason_1_text",
      "reason_2",
      "reason_2_text",
      "reason_3",
      "reason_3_text",
    ]);
    const rows = lines.slice(1).map(cells);
    expect(rows.length).toBeGreaterThan(0);
    const stored = await reasonsOf(
      store,
      runId,
      rows.map((r) => r[0] as string),
    );
    for (const row of rows) {
      expect(row[2]).toBe("high");
      const reasons = stored.get(row[0] as string) ?? [];
      for (let k = 0; k < 3; k++) {
        expect(row[6 + 2 * k]).toBe(reasons[k]?.feature ?? "");
        expect(row[7 + 2 * k]).toBe(reasons[k]?.text ?? "");
      }
    }
  });

  it("filters the list and its export by any categorical feature of the model, exactly the rows whose input had that value", async () => {
    expect(categorical.length).toBeGreaterThan(0);
    const inputs = await inputRows();
    const scored: string[] = [];
    for await (const page of iterateRisk(store, parseRiskFilter({ run: runId }))) scored.push(...page.map((r) => r.customer_id));
    const page = await (await client.get(`/risk?run=${encodeURIComponent(runId)}`)).text();
    for (const f of categorical) expect(page).toContain(`name="${f.name}"`);
    for (const f of categorical.slice(0, 2)) {
      const value = f.categories.find((v) => [...inputs.values()].some((r) => r[f.name] === v)) as string;
      const res = await client.get(`/risk.csv?run=${encodeURIComponent(runId)}&${encodeURIComponent(f.name)}=${encodeURIComponent(value)}`);
      expect(res.status).toBe(200);
      const ids = (await res.text())
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => cells(l)[0] as string);
      const want = scored.filter((id) => inputs.get(id)?.[f.name] === value);
      expect(want.length).toBeGreaterThan(0);
      expect(want.length).toBeLessThan(scored.length);
      expect(ids, `${f.name}=${value}`).toEqual(want);
      // The page shows the first rows of the same list, the chosen value selected.
      const html = await (await client.get(`/risk?run=${encodeURIComponent(runId)}&${encodeURIComponent(f.name)}=${encodeURIComponent(value)}`)).text();
      const shown = [...html.matchAll(/<tr><td><a href="[^"]*\/customers\/([^"]+)">/g)].map((m) => decodeURIComponent(m[1] as string));
      expect(shown).toEqual(want.slice(0, shown.length));
      expect(html).toContain(`<option value="${value}" selected>`);
    }
  });

  it("refuses a value the model does not know, and a parameter that is no filter, naming it", async () => {
    const f = categorical[0] as { name: string };
    for (const [query, field] of [
      [`${f.name}=no-such-value`, f.name],
      ["contract_typo=month", "contract_typo"],
    ] as const) {
      for (const path of ["/risk", "/risk.csv"]) {
        const res = await client.get(`${path}?run=${encodeURIComponent(runId)}&${query}`);
        expect(res.status, `${path} ${query}`).toBe(400);
        expect(decode(await res.text())).toContain(`${field}: `);
      }
    }
  });

  it("shows the categorical inputs the customer was scored with, as the input file had them", async () => {
    const inputs = await inputRows();
    const top = (await riskPage(store, { run: runId, sort: "risk_desc" }, { limit: 3 })).rows;
    for (const row of top) {
      const html = decode(await (await client.get(`/customers/${encodeURIComponent(row.customer_id)}?lang=en`)).text());
      const table = html.slice(html.indexOf('<table class="inputs">'));
      expect(table.length).toBeLessThan(html.length);
      for (const f of categorical) {
        const value = inputs.get(row.customer_id)?.[f.name];
        expect(table, `${row.customer_id} ${f.name}`).toContain(
          `<tr><td>${f.name}</td><td>${value === null || value === undefined || value === "" ? "missing" : String(value)}</td></tr>`,
        );
      }
    }
  });
});
