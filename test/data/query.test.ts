import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openSource } from "../../src/data/source.js";
import { PG_URL } from "../helpers/stores.js";

/** A query that closes the source's subquery, stacks a DROP, and reopens one, so the whole text still parses. */
const STACKED = "SELECT * FROM customers) AS x; DROP TABLE customers; SELECT * FROM (SELECT 1 AS customer_id";

interface Db {
  url: string;
  count(): Promise<number>;
}

async function postgresWithCustomers(): Promise<Db> {
  const schema = `q_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.query(`CREATE TABLE ${schema}.customers (customer_id text, tenure int)`);
  await client.query(`INSERT INTO ${schema}.customers VALUES ('a', 1), ('b', 2)`);
  await client.end();
  return {
    url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    count: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        return Number((await c.query(`SELECT count(*) AS n FROM ${schema}.customers`)).rows[0].n);
      } finally {
        await c.end();
      }
    },
  };
}

async function sqliteWithCustomers(): Promise<Db> {
  const path = join(mkdtempSync(join(tmpdir(), "churnops-query-")), "crm.db");
  const db = new SqliteDatabase(path);
  db.exec("CREATE TABLE customers (customer_id TEXT, tenure INTEGER); INSERT INTO customers VALUES ('a', 1), ('b', 2);");
  db.close();
  return {
    url: `sqlite://${path}`,
    count: async () => {
      const d = new SqliteDatabase(path, { readonly: true });
      try {
        return (d.prepare("SELECT count(*) AS n FROM customers").get() as { n: number }).n;
      } finally {
        d.close();
      }
    },
  };
}

describe.each([
  ["postgres", postgresWithCustomers],
  ["sqlite", sqliteWithCustomers],
])("--query on %s", (_name, make) => {
  it("refuses a stacked DROP TABLE and drops nothing", async () => {
    const db = await make();
    await expect(openSource({ data: db.url, query: STACKED })).rejects.toMatchObject({ code: "bad_input", field: "query" });
    expect(await db.count()).toBe(2);
  });

  it("still reads a plain query", async () => {
    const db = await make();
    const source = await openSource({ data: db.url, query: "SELECT customer_id, tenure FROM customers WHERE tenure > 1" });
    try {
      const rows: unknown[] = [];
      for await (const chunk of source.chunks({ columns: ["customer_id"], chunkSize: 10, skipRows: 0 })) rows.push(...(chunk.columns.get("customer_id") ?? []));
      expect(rows).toEqual(["b"]);
      expect([...(await source.duplicates("customer_id"))]).toEqual([]);
    } finally {
      await source.close();
    }
  });
});

describe("a query that writes in one statement", () => {
  it("is refused on PostgreSQL: the source reads in a read-only transaction", async () => {
    const db = await postgresWithCustomers();
    const writing = "SELECT customer_id FROM customers, LATERAL (SELECT set_config('x.y', 'z', false)) s FOR UPDATE";
    await expect(openSource({ data: db.url, query: writing })).rejects.toMatchObject({ code: "bad_input", message: expect.stringMatching(/read-only/) });
    expect(await db.count()).toBe(2);
  });
});

describe("a source's description", () => {
  it("carries no password from the URL (it is printed and stored as the run's source)", async () => {
    const db = await postgresWithCustomers();
    const source = await openSource({ data: `${db.url}&password=s3cret-in-url`, table: "customers" });
    try {
      expect(source.description).not.toContain("s3cret");
      expect(source.description).toContain("password=***");
    } finally {
      await source.close();
    }
  });
});
