import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore, type Store } from "../../src/store/db.js";
import { customerReasons, reasonsOf } from "../../src/store/read/customer-reasons.js";
import { storeTargets } from "../helpers/stores.js";

const fixture = inject("fixture");
let model: ChurnModel;
let workdir: string;

async function readFile(path: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const reader = await conn.runAndReadAll(`SELECT * FROM '${path}'`);
  const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
  conn.closeSync();
  instance.closeSync();
  return rows;
}

beforeAll(async () => {
  model = await ChurnModel.load(fixture.bundleDir, { inferenceWorker: true });
  workdir = mkdtempSync(join(tmpdir(), "churnops-reasons-batch-"));
});
afterAll(async () => {
  await model.close();
});

/** The fixture's customers scored into `store` and the file `out`, with 3 reasons each, in 700-row chunks. */
function scoreWithReasons(store: Store, out: string, asOf: string): ReturnType<typeof scoreBatch> {
  return scoreBatch({ source: { data: fixture.dataPath }, model, kind: "daily", asOf, store, out, chunkSize: 700, badRows: "quarantine", reasons: 3 });
}

describe.each(storeTargets)("score --reasons into $name", (target) => {
  it("writes reason_1..3 and their texts to the file and stores the same top reasons with each score", async () => {
    const store = await openStore(await target.fresh());
    const out = join(workdir, `${target.name}.csv`);
    try {
      const summary = await scoreWithReasons(store, out, "2026-11-03");
      expect(summary.rowsScored).toBe(4000);
      const rows = await readFile(out);
      expect(Object.keys(rows[0] ?? {}).filter((c) => c.startsWith("reason_"))).toEqual([
        "reason_1",
        "reason_1_text",
        "reason_2",
        "reason_2_text",
        "reason_3",
        "reason_3_text",
      ]);
      const names = new Set(model.bundle.schema.features.map((f) => f.name));
      for (const row of rows.slice(0, 500)) {
        if (row.reason_1 === null) continue;
        expect(names.has(String(row.reason_1))).toBe(true);
        expect(String(row.reason_1_text)).toMatch(new RegExp(`^${row.reason_1}: .* — .*; raises risk the most$`));
        if (row.reason_2 !== null) expect(row.reason_2).not.toBe(row.reason_1);
      }
      const sample = rows[3] as Record<string, unknown>;
      const stored = await customerReasons(store, String(sample.customer_id));
      expect(stored?.runId).toBe(summary.runId);
      expect(stored?.reasons.map((r) => r.feature)).toEqual([sample.reason_1, sample.reason_2, sample.reason_3].filter((v) => v !== null));
      expect(stored?.reasons.map((r) => r.text)).toEqual([sample.reason_1_text, sample.reason_2_text, sample.reason_3_text].filter((v) => v !== null));
      const contributions = stored?.reasons.map((r) => r.contribution) ?? [];
      expect(contributions).toEqual([...contributions].sort((a, b) => b - a));
      for (const c of contributions) expect(c).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it("writes every row's reasons to a Parquet file as the store keeps them, the sentences as plain text", async () => {
    const store = await openStore(await target.fresh());
    const out = join(workdir, `${target.name}.parquet`);
    try {
      const summary = await scoreWithReasons(store, out, "2026-11-04");
      const rows = await readFile(out);
      expect(rows).toHaveLength(summary.rowsScored);
      const stored = await reasonsOf(
        store,
        summary.runId,
        rows.map((r) => String(r.customer_id)),
      );
      let withReasons = 0;
      for (const row of rows) {
        const kept = stored.get(String(row.customer_id)) ?? [];
        const written = [1, 2, 3].map((k) => [row[`reason_${k}`], row[`reason_${k}_text`]]).filter(([f]) => f !== null);
        expect(written).toEqual(kept.map((r) => [r.feature, r.text]));
        if (kept.length > 0) withReasons++;
      }
      expect(withReasons).toBeGreaterThan(rows.length / 2);
      // Another reader sees text columns, not a dictionary type of DuckDB's.
      const instance = await DuckDBInstance.create(":memory:");
      const conn = await instance.connect();
      const types = (await conn.runAndReadAll(`SELECT name, type FROM parquet_schema('${out}') WHERE name LIKE 'reason_%_text'`)).getRowObjectsJS();
      conn.closeSync();
      instance.closeSync();
      expect(types.map((t) => t.type)).toEqual(["BYTE_ARRAY", "BYTE_ARRAY", "BYTE_ARRAY"]);
    } finally {
      await store.close();
    }
  });
});

describe("score --reasons with a bundle that has none", () => {
  it("is refused before any row is read, naming why", async () => {
    const plain = Object.create(model) as ChurnModel;
    Object.defineProperty(plain, "explains", { value: false });
    Object.defineProperty(plain, "explanationsUnavailable", { value: "the chosen model's trees test several features at once" });
    await expect(
      scoreBatch({
        source: { data: fixture.dataPath },
        model: plain,
        kind: "daily",
        asOf: "2026-11-04",
        store: null,
        out: join(workdir, "x.csv"),
        chunkSize: 500,
        badRows: "quarantine",
        reasons: 2,
      }),
    ).rejects.toThrow(/--reasons: model .* has no contributions \(the chosen model's trees test several features at once\)/);
  });
});
