import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import SqliteDatabase from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { type ColumnValues, cellOf, isCodeColumn, isNumberColumn } from "../../src/data/columns.js";
import { openSource, type RawChunk } from "../../src/data/source.js";
import { RowValidator } from "../../src/data/validate.js";
import type { BundleJson } from "../../src/model/bundle.js";
import { type CategoryCodes, categoryStrings, type FeatureBatch } from "../../src/model/features.js";

const categories = ["month-to-month", "one_year", "two_year"];
const schema = {
  id_column: "customer_id",
  target: { column: "churned", positive: "1" },
  missing_token: "__missing__",
  features: [
    { name: "tenure_months", kind: "numeric", integer: true, required: true, lower_bound: 0, upper_bound: null },
    { name: "monthly_charges", kind: "numeric", integer: false, required: true, lower_bound: 0, upper_bound: 500 },
    { name: "total_charges", kind: "numeric", integer: false, required: false, lower_bound: 0, upper_bound: null },
    { name: "num_support_tickets", kind: "numeric", integer: true, required: false, lower_bound: 0, upper_bound: null },
    { name: "contract_type", kind: "categorical", required: true, categories },
  ],
  derived: [],
  transformed_feature_names: [],
} as const;
const bundle = { schema } as unknown as BundleJson;
const features = schema.features.map((f) => f.name);
const hints = {
  numeric: new Set(schema.features.filter((f) => f.kind === "numeric").map((f) => f.name)),
  categories: new Map([["contract_type", categories]]),
};
const ROWS = 5000;
let parquet: string;

beforeAll(async () => {
  // Typed Parquet columns (DOUBLE, DECIMAL, BIGINT, VARCHAR) with every kind of bad value scattered through
  // more rows than one DuckDB vector, so values cross vector boundaries inside a scoring chunk.
  parquet = join(mkdtempSync(join(tmpdir(), "churnops-source-")), "typed.parquet");
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  await conn.run(`COPY (
    SELECT 'c' || i AS customer_id,
      CASE WHEN i % 97 = 5 THEN NULL WHEN i % 101 = 7 THEN -1 WHEN i % 71 = 3 THEN 2.5 ELSE i % 72 END::DOUBLE AS tenure_months,
      CASE WHEN i % 89 = 3 THEN 'NaN'::DOUBLE WHEN i % 83 = 4 THEN 'Infinity'::DOUBLE WHEN i % 79 = 2 THEN NULL
           WHEN i % 113 = 9 THEN 501 ELSE (i % 100) + 0.25 END AS monthly_charges,
      CASE WHEN i % 61 = 1 THEN NULL ELSE (i * 1.5)::DECIMAL(12, 2) END AS total_charges,
      CASE WHEN i % 43 = 2 THEN NULL ELSE i % 9 END::BIGINT AS num_support_tickets,
      CASE WHEN i % 53 = 0 THEN 'weekly' WHEN i % 59 = 0 THEN NULL WHEN i % 67 = 0 THEN ''
           ELSE ['month-to-month', 'one_year', 'two_year'][i % 3 + 1] END AS contract_type
    FROM range(${ROWS}) t(i) ORDER BY i
  ) TO '${parquet}' (FORMAT parquet)`);
  conn.closeSync();
  instance.closeSync();
});

async function collect<C extends ColumnValues>(chunks: AsyncGenerator<RawChunk<C>>): Promise<RawChunk<C>[]> {
  const out: RawChunk<C>[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

/** The batch with categorical columns spelled out, however they are held. */
function asStrings(batch: FeatureBatch): Map<string, Float32Array | string[]> {
  return new Map([...batch.columns].map(([k, c]) => [k, c instanceof Float32Array ? c : categoryStrings(c as string[] | CategoryCodes)]));
}

describe("reading a typed Parquet file with the model's column hints", () => {
  it("delivers exactly the values a plain read does, numeric features as number columns", async () => {
    const source = await openSource({ data: parquet });
    try {
      const options = { columns: ["customer_id", ...features], chunkSize: 3000, skipRows: 0 };
      const plain = await collect(source.chunks(options));
      const typed = await collect(source.modelChunks(options, hints));
      expect(typed.map((c) => [c.start, c.size])).toEqual(plain.map((c) => [c.start, c.size]));
      expect(typed.reduce((n, c) => n + c.size, 0)).toBe(ROWS);
      for (let k = 0; k < plain.length; k++) {
        const p = plain[k] as RawChunk;
        const t = typed[k] as RawChunk<ColumnValues>;
        for (const name of ["tenure_months", "monthly_charges", "total_charges", "num_support_tickets"]) {
          const column = t.columns.get(name) as ColumnValues;
          expect(isNumberColumn(column), name).toBe(true);
          const expected = (p.columns.get(name) as unknown[]).map((v) => (v === null ? null : Number(v)));
          const got = Array.from({ length: t.size }, (_, i) => cellOf(column, i));
          expect(got, name).toEqual(expected);
        }
        expect(t.columns.get("customer_id")).toEqual(p.columns.get("customer_id"));
        // The categorical feature arrives as codes into the model's categories; cell by cell it reads the same.
        const contract = t.columns.get("contract_type") as ColumnValues;
        expect(isCodeColumn(contract)).toBe(true);
        expect(Array.from({ length: t.size }, (_, i) => cellOf(contract, i))).toEqual(p.columns.get("contract_type"));
      }
    } finally {
      await source.close();
    }
  });

  it("leads validation to the same scorable batch and the same reasons for every bad row", async () => {
    const source = await openSource({ data: parquet });
    const validator = new RowValidator(bundle);
    try {
      const options = { columns: features, chunkSize: 3000, skipRows: 0 };
      const plain = await collect(source.chunks(options));
      const typed = await collect(source.modelChunks(options, hints));
      const codes = new Set<string>();
      for (let k = 0; k < plain.length; k++) {
        const p = plain[k] as RawChunk;
        const t = typed[k] as RawChunk<ColumnValues>;
        const a = validator.checkChunk(p.columns, p.size, { textNumbers: false });
        const b = validator.checkChunk(t.columns, t.size, { textNumbers: false });
        expect(b.goodRows).toEqual(a.goodRows);
        expect(b.badRows).toEqual(a.badRows);
        expect(asStrings(b.batch)).toEqual(asStrings(a.batch));
        for (const bad of b.badRows) for (const v of bad.violations) codes.add(v.code);
      }
      // The file holds every kind of bad value, so the comparison above covered each of them.
      expect([...codes].sort()).toEqual(["above_maximum", "below_minimum", "missing", "not_finite", "not_integer", "unseen_category"]);
    } finally {
      await source.close();
    }
  });

  it("resumes from a row offset with the same rows as a plain read", async () => {
    const source = await openSource({ data: parquet });
    try {
      const options = { columns: ["customer_id", "monthly_charges"], chunkSize: 1000, skipRows: 4321 };
      const plain = await collect(source.chunks(options));
      const typed = await collect(source.modelChunks(options, hints));
      expect(typed[0]?.start).toBe(4321);
      expect(typed.flatMap((c) => c.columns.get("customer_id") as unknown[])).toEqual(plain.flatMap((c) => c.columns.get("customer_id") as unknown[]));
      const values = (chunks: RawChunk<ColumnValues>[]) =>
        chunks.flatMap((c) => Array.from({ length: c.size }, (_, i) => cellOf(c.columns.get("monthly_charges") as ColumnValues, i)));
      expect(values(typed)).toEqual(values(plain));
    } finally {
      await source.close();
    }
  });

  it("names a CSV's ragged line, a field too many or too few, early in the file or beyond the sniffer's sample", async () => {
    const dir = mkdtempSync(join(tmpdir(), "churnops-ragged-"));
    const header = "customer_id,tenure_months,monthly_charges,total_charges,num_support_tickets,contract_type";
    const line = (i: number) => `C${i},${i % 70},${(20 + (i % 80)).toFixed(2)},${i * 3},${i % 4},"two_year"`;
    const cases = [
      { name: "extra-early", at: 40, edit: (l: string) => `${l},extra`, fields: 7 },
      { name: "short-early", at: 12, edit: (l: string) => l.split(",").slice(0, 4).join(","), fields: 4 },
      { name: "extra-deep", at: 60_000, edit: (l: string) => `${l},extra`, fields: 7 },
      { name: "short-deep", at: 60_000, edit: (l: string) => l.split(",").slice(0, 5).join(","), fields: 5 },
    ];
    for (const c of cases) {
      const lines = [header, ...Array.from({ length: 70_000 }, (_, i) => line(i))];
      lines[c.at - 1] = c.edit(lines[c.at - 1] as string);
      const path = join(dir, `${c.name}.csv`);
      writeFileSync(path, `${lines.join("\n")}\n`);
      const read = async () => {
        const source = await openSource({ data: path });
        try {
          for await (const _ of source.modelChunks({ columns: features, chunkSize: 10_000, skipRows: 0 }, hints));
        } finally {
          await source.close();
        }
      };
      await expect(read(), c.name).rejects.toThrow(`${path} line ${c.at} has ${c.fields} fields where the header has 6`);
    }
    // A value that holds the delimiter inside quotes is one field, not a ragged line.
    const quoted = join(dir, "quoted.csv");
    writeFileSync(quoted, `${header}\nC1,3,20.5,61,0,"two_year"\n"C,2",4,21.5,86,1,"one_year"\n`);
    const source = await openSource({ data: quoted });
    try {
      const ids: unknown[] = [];
      for await (const chunk of source.chunks({ columns: ["customer_id"], chunkSize: 10, skipRows: 0 }))
        ids.push(...(chunk.columns.get("customer_id") as unknown[]));
      expect(ids).toEqual(["C1", "C,2"]);
    } finally {
      await source.close();
    }
  });
});

describe("the row count a source knows without reading its rows", () => {
  it("is the exact count for Parquet and for a small CSV, and unknown for a large CSV or a database table", async () => {
    const dir = mkdtempSync(join(tmpdir(), "churnops-rows-"));
    const fromParquet = await openSource({ data: parquet });
    expect(await fromParquet.knownRows()).toBe(ROWS);
    await fromParquet.close();

    const header = "customer_id,tenure_months\n";
    const small = join(dir, "small.csv");
    writeFileSync(small, header + Array.from({ length: 37 }, (_, i) => `c${i},${i}\n`).join(""));
    const fromSmall = await openSource({ data: small });
    expect(await fromSmall.knownRows()).toBe(37);
    await fromSmall.close();

    // Over a mebibyte: counting would be a whole extra pass over the file.
    const large = join(dir, "large.csv");
    writeFileSync(large, header + Array.from({ length: 80_000 }, (_, i) => `customer-${i},${i % 100}\n`).join(""));
    const fromLarge = await openSource({ data: large });
    expect(await fromLarge.knownRows()).toBeNull();
    await fromLarge.close();

    const db = join(dir, "c.db");
    const sqlite = new SqliteDatabase(db);
    sqlite.exec("CREATE TABLE customers (customer_id TEXT, tenure_months INTEGER); INSERT INTO customers VALUES ('a', 1), ('b', 2)");
    sqlite.close();
    const fromTable = await openSource({ data: `sqlite://${db}`, table: "customers" });
    expect(await fromTable.knownRows()).toBeNull();
    await fromTable.close();
  });
});
