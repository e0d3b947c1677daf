import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { isChurnopsError } from "../../src/errors.js";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore } from "../../src/store/db.js";
import { quarantined } from "../../src/store/runs.js";
import { storeTargets } from "../helpers/stores.js";
import { customer, type ErrorJson, predict, startApp, type TestApp } from "../server/helpers.js";

/**
 * One validation policy: the same value of a feature is refused (or taken as missing) by the API and by batch
 * scoring alike. Each case is sent as JSON to /v1/predict and written as a CSV cell for `score`.
 */
const fixture = inject("fixture");
let model: ChurnModel;
let t: TestApp;
let workdir: string;

beforeAll(async () => {
  model = await ChurnModel.load(fixture.bundleDir);
  t = await startApp();
  workdir = mkdtempSync(join(tmpdir(), "churnops-policy-"));
});
afterAll(async () => {
  await t?.close();
  await model?.close();
});

const COLUMNS = Object.keys(customer());

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  const text = String(v);
  return /[",\n\s]/.test(text) || text === "" ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Batch-score one row (a CSV cell per value; `raw` overrides a cell's text as written) and say what became of it. */
async function batchOutcome(row: Record<string, unknown>, raw: Record<string, string> = {}): Promise<{ scored: boolean; reason: string | null }> {
  const csv = join(workdir, `row-${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(csv, `${COLUMNS.join(",")}\n${COLUMNS.map((c) => raw[c] ?? csvCell(row[c])).join(",")}\n`);
  const store = await openStore(`sqlite://${csv}.db`);
  try {
    // A run that scores no row fails (issue 15), so a refused row shows as that error plus its quarantine reason.
    const scored = await scoreBatch({ source: { data: csv }, model, kind: "daily", asOf: "2026-11-05", store, chunkSize: 16, badRows: "quarantine" }).then(
      (summary) => summary.rowsScored === 1,
      (err: unknown) => {
        if (isChurnopsError(err) && err.code === "validation_failed") return false;
        throw err;
      },
    );
    const { run_id: runId } = await store.db.selectFrom("score_runs").select("run_id").executeTakeFirstOrThrow();
    return { scored, reason: (await quarantined(store, runId))[0]?.reason ?? null };
  } finally {
    await store.close();
  }
}

async function apiOutcome(row: Record<string, unknown>): Promise<{ status: number; error: ErrorJson["error"] | null }> {
  const res = await predict(t.app, row);
  return { status: res.statusCode, error: res.statusCode === 200 ? null : (JSON.parse(res.body) as ErrorJson).error };
}

describe("the API and batch scoring refuse the same values", () => {
  it.each([
    ["monthly_charges", 3.5e38, "3.5e+38"],
    ["monthly_charges", -3.5e38, "-3.5e38"],
    ["total_charges", 1e39, "1e39"],
    ["tenure_months", 1e20, "99999999999999999999"],
    ["num_support_tickets", 2 ** 60, "1152921504606846976"],
  ])("%s = %s (a CSV cell %s) is beyond what the model computes exactly", async (field, value, cell) => {
    const api = await apiOutcome(customer("p-1", { [field]: value }));
    expect(api.status).toBe(422);
    expect(api.error?.violations?.[0]).toMatchObject({ field, code: value > 0 ? "above_maximum" : "below_minimum" });
    const batch = await batchOutcome(customer("p-1"), { [field]: cell });
    expect(batch.scored).toBe(false);
    expect(batch.reason).toMatch(new RegExp(`${field}: .* is beyond what the model computes exactly`));
  });
});

describe("blank text in a feature is missing on both paths", () => {
  it.each(["", " ", "\t"])("an optional numeric field given as %j is scored as missing", async (blank) => {
    const missing = await apiOutcome(customer("b-1", { total_charges: null }));
    const api = await apiOutcome(customer("b-1", { total_charges: blank }));
    expect(api.status).toBe(200);
    expect(missing.status).toBe(200);
    const batch = await batchOutcome(customer("b-1", { total_charges: blank }));
    expect(batch).toEqual({ scored: true, reason: null });
  });

  it.each(["", "  "])("a required numeric field given as %j is refused as missing", async (blank) => {
    const api = await apiOutcome(customer("b-2", { monthly_charges: blank }));
    expect(api.status).toBe(422);
    expect(api.error?.violations?.[0]).toMatchObject({ field: "monthly_charges", code: "missing" });
    const batch = await batchOutcome(customer("b-2", { monthly_charges: blank }));
    expect(batch.scored).toBe(false);
    expect(batch.reason).toContain("monthly_charges: a value is required");
  });
});

describe("any JSON value, however deep", () => {
  it.each([10, 5_000, 50_000])("answers a feature value nested %i arrays deep with 422, never a 500", async (depth) => {
    const deep = `${"[".repeat(depth)}1${"]".repeat(depth)}`;
    const body = JSON.stringify(customer("d-1")).replace('"tenure_months":11', `"tenure_months":${deep}`);
    const app = await startApp({ server: { body_limit_bytes: 1024 * 1024 } });
    try {
      const res = await app.app.inject({
        method: "POST",
        url: "/v1/predict",
        headers: { "content-type": "application/json", authorization: "Bearer test-key-0123456789abcdef" },
        payload: body,
      });
      expect(res.statusCode, res.body).toBe(422);
      expect((JSON.parse(res.body) as ErrorJson).error.violations?.[0]).toMatchObject({
        field: "tenure_months",
        code: "wrong_type",
        message: expect.stringContaining("a list of 1, not a number"),
      });
    } finally {
      await app.close();
    }
  });
});

describe.each(storeTargets)("a customer id with a NUL character, into $name", (target) => {
  it("is refused by the API with 422 and quarantined by batch scoring with a reason; the other rows are scored", async () => {
    const api = await apiOutcome(customer("a\u0000b"));
    expect(api.status).toBe(422);
    expect(api.error).toMatchObject({ field: "customer_id", violations: [{ code: "unstorable_text" }] });

    const crm = join(workdir, `crm-${target.name}.db`);
    const db = new SqliteDatabase(crm);
    db.exec(`CREATE TABLE customers (${COLUMNS.join(", ")})`);
    const insert = db.prepare(`INSERT INTO customers VALUES (${COLUMNS.map(() => "?").join(", ")})`);
    for (const id of ["ok-1", "bad\u0000id", "ok-2"]) insert.run(...COLUMNS.map((c) => customer(id)[c]));
    db.close();
    const store = await openStore(await target.fresh());
    try {
      const summary = await scoreBatch({
        source: { data: `sqlite://${crm}`, table: "customers" },
        model,
        kind: "daily",
        asOf: "2026-11-06",
        store,
        chunkSize: 16,
        badRows: "quarantine",
      });
      expect(summary.status).toBe("complete");
      expect(summary.rowsScored).toBe(2);
      const rows = await quarantined(store, summary.runId);
      expect(rows).toMatchObject([
        { row_number: 2, customer_id: null, reason: expect.stringContaining('customer_id: the customer id "bad\\u0000id" contains a NUL character') },
      ]);
    } finally {
      await store.close();
    }
  });
});
