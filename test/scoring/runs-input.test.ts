import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import SqliteDatabase from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { type BatchOptions, scoreBatch } from "../../src/scoring/batch.js";
import { openStore, type Store } from "../../src/store/db.js";
import { getRun, quarantined } from "../../src/store/runs.js";
import { runCli, startCli } from "../helpers/cli.js";
import { countRows, storeTargets } from "../helpers/stores.js";

const fixture = inject("fixture");
let model: ChurnModel;
let workdir: string;

/** Run one DuckDB statement over the fixture's customers (`customers` in the SQL). */
async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    await conn.run(`CREATE VIEW customers AS SELECT * FROM read_parquet('${fixture.dataPath}')`);
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

async function storedScores(store: Store, runId: string): Promise<number> {
  const row = await store.db
    .selectFrom("scores")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("run_id", "=", runId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

beforeAll(async () => {
  model = await ChurnModel.load(fixture.bundleDir);
  workdir = mkdtempSync(join(tmpdir(), "churnops-runs-input-"));
});
afterAll(async () => {
  await model.close();
});

const base = (store: Store | null, data: string, asOf: string): BatchOptions => ({
  source: { data },
  model,
  kind: "daily",
  asOf,
  store,
  chunkSize: 500,
  badRows: "quarantine",
});

describe.each(storeTargets)("a run's input, on $name", (target) => {
  it("refuses to resume a killed run with the rows in another order, and --rerun starts it over with every score stored", async () => {
    // 200,000 rows: the run is still going when it is killed.
    const data = join(workdir, `kill-${target.name}.parquet`);
    await duck(`COPY (SELECT * REPLACE (customer_id || '-' || k AS customer_id) FROM customers, range(50) t(k) ORDER BY k, customer_id) TO '${data}'`);
    const dbUrl = await target.fresh();
    const env = { CHURNOPS_HOME: fixture.home, CHURNOPS_DB_URL: dbUrl };
    const args = ["score", "--data", data, "--model", fixture.bundleDir, "--as-of", "2026-11-20", "--chunk-size", "500", "--json"];
    const runId = `daily-2026-11-20-churn-v${fixture.version}`;
    const { child, done } = startCli(args, env);
    const store = await openStore(dbUrl);
    try {
      for (;;) {
        const row = await store.db.selectFrom("score_runs").select("checkpoint_rows").where("run_id", "=", runId).executeTakeFirst();
        if (row !== undefined && Number(row.checkpoint_rows) >= 10_000) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
      expect((await done).signal).toBe("SIGKILL");
      const mid = await getRun(store, runId);
      expect(mid.status).toBe("running");

      // The same file name, the same rows, another order (what lost 589,824 scores in issue 14).
      await duck(`COPY (SELECT * FROM read_parquet('${data}') ORDER BY hash(customer_id)) TO '${data}.shuffled.parquet'`);
      await duck(`COPY (SELECT * FROM read_parquet('${data}.shuffled.parquet')) TO '${data}'`);
      const refused = await runCli(args, env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(new RegExp(`run ${runId} stopped after row ${mid.checkpoint_rows}.*--rerun`));
      expect(refused.stderr).not.toMatch(/\n\s+at /);
      const untouched = await getRun(store, runId);
      expect(untouched.checkpoint_rows).toBe(mid.checkpoint_rows);
      expect(await storedScores(store, runId)).toBe(Number(mid.rows_scored));

      const rerun = await runCli([...args, "--rerun"], env);
      expect(rerun.stderr).toBe("");
      const summary = JSON.parse(rerun.stdout) as { status: string; resumed_from: number; rows_scored: number };
      expect(summary).toMatchObject({ status: "complete", resumed_from: 0, rows_scored: 200_000 });
      const final = await getRun(store, runId);
      expect(final.rows_scored).toBe(200_000);
      expect(await storedScores(store, runId)).toBe(200_000);
    } finally {
      await store.close();
    }
  });

  it("refuses to resume from a database table whose rows came back in another order (checked by the ids' fingerprint)", async () => {
    const db = join(workdir, `source-${target.name}.db`);
    const rows = await duck("SELECT * FROM customers ORDER BY customer_id LIMIT 2000");
    const write = (order: Record<string, unknown>[]) => {
      const sqlite = new SqliteDatabase(db);
      const cols = Object.keys(rows[0] as object);
      sqlite.exec(`DROP TABLE IF EXISTS customers; CREATE TABLE customers (${cols.map((c) => `"${c}"`).join(", ")})`);
      const insert = sqlite.prepare(`INSERT INTO customers VALUES (${cols.map(() => "?").join(", ")})`);
      sqlite.transaction(() => {
        for (const r of order) insert.run(...cols.map((c) => r[c] as string | number | null));
      })();
      sqlite.close();
    };
    // Row 1,200 is refused under the "fail" policy: the run stops with 1,000 rows committed (chunks of 500).
    const broken = rows.map((r, i) => (i === 1199 ? { ...r, tenure_months: -1 } : r));
    write(broken);
    const store = await openStore(await target.fresh());
    try {
      const source = { data: `sqlite://${db}`, table: "customers" };
      await expect(scoreBatch({ ...base(store, "", "2026-11-21"), source, badRows: "fail" })).rejects.toThrow(/row 1200/);
      const runId = `daily-2026-11-21-churn-v${fixture.version}`;
      expect((await getRun(store, runId)).checkpoint_rows).toBe(1000);

      write([...broken].reverse());
      await expect(scoreBatch({ ...base(store, "", "2026-11-21"), source })).rejects.toThrow(
        /stopped after row 1000, but the first 1000 rows .* are not the rows it scored .*--rerun/,
      );
      expect(await storedScores(store, runId)).toBe(1000);

      // The same rows in the same order resume, and every score is there once.
      write(broken);
      const resumed = await scoreBatch({ ...base(store, "", "2026-11-21"), source });
      expect(resumed).toMatchObject({ status: "complete", resumedFrom: 1000, rowsScored: 1999, rowsQuarantined: 1 });
      expect(await storedScores(store, runId)).toBe(1999);
    } finally {
      await store.close();
    }
  });

  it("refuses to call another file's run complete, says how to proceed, and --rerun replaces its scores", async () => {
    const first = join(workdir, `first-${target.name}.parquet`);
    const second = join(workdir, `second-${target.name}.parquet`);
    await duck(`COPY (SELECT * FROM customers LIMIT 1000) TO '${first}'`);
    await duck(`COPY (SELECT * REPLACE ('X' || customer_id AS customer_id) FROM customers LIMIT 300) TO '${second}'`);
    const store = await openStore(await target.fresh());
    try {
      const done = await scoreBatch(base(store, first, "2026-11-22"));
      expect(done.rowsScored).toBe(1000);
      const again = await scoreBatch(base(store, first, "2026-11-22"));
      expect(again.status).toBe("already_complete");
      await expect(scoreBatch(base(store, second, "2026-11-22"))).rejects.toThrow(
        new RegExp(`already complete, scored from ${first}.*this input is ${second}.*--rerun.*--as-of`),
      );
      expect(await storedScores(store, done.runId)).toBe(1000);

      const replaced = await scoreBatch({ ...base(store, second, "2026-11-22"), rerun: true });
      expect(replaced).toMatchObject({ status: "complete", rowsScored: 300, resumedFrom: 0 });
      expect(await storedScores(store, done.runId)).toBe(300);
      const ids = await store.db.selectFrom("scores").select("customer_id").where("run_id", "=", done.runId).limit(5).execute();
      expect(ids.every((r) => r.customer_id.startsWith("X"))).toBe(true);
      expect((await getRun(store, done.runId)).source).toBe(second);
    } finally {
      await store.close();
    }
  });

  it("keeps a complete run's scores whole while --rerun replaces them: a killed re-run leaves them as they were", async () => {
    const first = join(workdir, `atomic-first-${target.name}.parquet`);
    const big = join(workdir, `atomic-big-${target.name}.parquet`);
    await duck(`COPY (SELECT * FROM customers LIMIT 1000) TO '${first}'`);
    await duck(`COPY (SELECT * REPLACE ('R' || customer_id || '-' || k AS customer_id) FROM customers, range(50) t(k) ORDER BY k, customer_id) TO '${big}'`);
    const dbUrl = await target.fresh();
    const env = { CHURNOPS_HOME: fixture.home, CHURNOPS_DB_URL: dbUrl };
    const args = (data: string) => ["score", "--data", data, "--model", fixture.bundleDir, "--as-of", "2026-11-27", "--chunk-size", "500", "--json"];
    const runId = `daily-2026-11-27-churn-v${fixture.version}`;
    expect((await runCli(args(first), env)).code).toBe(0);
    const store = await openStore(dbUrl);
    const original = async () => {
      const run = await getRun(store, runId);
      const ids = await store.db.selectFrom("scores").select("customer_id").where("run_id", "=", runId).execute();
      return {
        status: run.status,
        source: run.source,
        rows: run.rows_scored,
        stored: ids.length,
        fromBig: ids.filter((r) => r.customer_id.startsWith("R")).length,
      };
    };
    const before = await original();
    expect(before).toEqual({ status: "complete", source: first, rows: 1000, stored: 1000, fromBig: 0 });
    try {
      const { child, done } = startCli([...args(big), "--rerun"], env);
      for (;;) {
        const row = await store.db.selectFrom("score_runs").select("checkpoint_rows").where("replaces", "=", runId).executeTakeFirst();
        if (row !== undefined && Number(row.checkpoint_rows) >= 10_000) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      // Mid-way, and after a kill, a reader of the run sees exactly the scores it had.
      expect(await original()).toEqual(before);
      child.kill("SIGKILL");
      expect((await done).signal).toBe("SIGKILL");
      expect(await original()).toEqual(before);
      const latest = await store.db.selectFrom("score_runs").select("run_id").where("status", "=", "complete").execute();
      expect(latest.map((r) => r.run_id)).toEqual([runId]);

      const rerun = await runCli([...args(big), "--rerun"], env);
      expect(rerun.stderr).toBe("");
      expect(JSON.parse(rerun.stdout)).toMatchObject({ run_id: runId, status: "complete", rows_scored: 200_000 });
      expect(await original()).toEqual({ status: "complete", source: big, rows: 200_000, stored: 200_000, fromBig: 200_000 });
      const left = await store.db.selectFrom("score_runs").select("run_id").execute();
      expect(left.map((r) => r.run_id)).toEqual([runId]);
    } finally {
      await store.close();
    }
  });

  it("marks a run in which no row was scored as failed: an empty table, or every row quarantined", async () => {
    const empty = join(workdir, `empty-${target.name}.parquet`);
    await duck(`COPY (SELECT * FROM customers LIMIT 0) TO '${empty}'`);
    const allBad = join(workdir, `allbad-${target.name}.parquet`);
    await duck(`COPY (SELECT * REPLACE (-1 AS tenure_months) FROM customers LIMIT 40) TO '${allBad}'`);
    const store = await openStore(await target.fresh());
    try {
      await expect(scoreBatch(base(store, empty, "2026-11-23"))).rejects.toThrow(/no customer was scored: .* has no rows; run .* is marked failed/);
      expect((await getRun(store, `daily-2026-11-23-churn-v${fixture.version}`)).status).toBe("failed");
      await expect(scoreBatch(base(store, allBad, "2026-11-24"))).rejects.toThrow(/every one of the 40 rows .* was quarantined/);
      const failed = await getRun(store, `daily-2026-11-24-churn-v${fixture.version}`);
      expect(failed).toMatchObject({ status: "failed", rows_scored: 0, rows_quarantined: 40 });
      expect(await quarantined(store, failed.run_id)).toHaveLength(40);
    } finally {
      await store.close();
    }
  });

  it("catches float ids that are duplicates (1.0 twice) and stores every row it reports", async () => {
    const data = join(workdir, `float-ids-${target.name}.parquet`);
    // Ids 1.0, 2.0, …, 10.0, then 1.0 … 5.0 again: five duplicates, as DOUBLE and as DECIMAL.
    await duck(
      `COPY (SELECT * REPLACE (CAST(((row_number() OVER (ORDER BY customer_id) - 1) % 10) + 1 AS DOUBLE) AS customer_id) FROM (SELECT * FROM customers ORDER BY customer_id LIMIT 15)) TO '${data}'`,
    );
    const decimal = join(workdir, `decimal-ids-${target.name}.parquet`);
    await duck(`COPY (SELECT * REPLACE (CAST(customer_id AS DECIMAL(12, 2)) AS customer_id) FROM read_parquet('${data}')) TO '${decimal}'`);
    const store = await openStore(await target.fresh());
    try {
      for (const [file, asOf] of [
        [data, "2026-11-25"],
        [decimal, "2026-11-26"],
      ] as const) {
        const summary = await scoreBatch(base(store, file, asOf));
        expect(summary).toMatchObject({ rowsScored: 10, rowsQuarantined: 5 });
        expect(await storedScores(store, summary.runId)).toBe(10);
        const reasons = (await quarantined(store, summary.runId)).map((q) => q.reason);
        expect(reasons).toEqual([1, 2, 3, 4, 5].map((id) => expect.stringContaining(`duplicate customer id ${id} (already scored from row ${id})`)));
      }
    } finally {
      await store.close();
    }
  });
});

describe("outputs and `latest`", () => {
  it("refuses --out into a missing directory before anything is scored", async () => {
    const store = await openStore(`sqlite://${join(workdir, "missing-dir.db")}`);
    try {
      const out = join(workdir, "no-such-dir", "scores.parquet");
      await expect(scoreBatch({ ...base(store, fixture.dataPath, "2026-11-27"), out })).rejects.toThrow(/--out .*no-such-dir.* does not exist/);
      expect(await countRows(store, "score_runs")).toBe(0);
      expect(existsSync(out)).toBe(false);
    } finally {
      await store.close();
    }
  });

  it("writes a file beside the store while scoring: the rows in input order, as stored", async () => {
    const data = join(workdir, "shuffled.parquet");
    await duck(`COPY (SELECT * FROM customers ORDER BY hash(customer_id) LIMIT 3000) TO '${data}'`);
    const input = (await duck(`SELECT customer_id FROM read_parquet('${data}')`)).map((r) => String(r.customer_id));
    const store = await openStore(`sqlite://${join(workdir, "beside.db")}`);
    try {
      const out = join(workdir, "beside.parquet");
      const summary = await scoreBatch({ ...base(store, data, "2026-11-28"), out });
      expect(summary.rowsScored).toBe(3000);
      // An export read back from the store would come in customer order; the run's own file keeps the input's.
      const written = await duck(`SELECT customer_id, probability FROM read_parquet('${out}')`);
      expect(written.map((r) => r.customer_id)).toEqual(input);
      const stored = new Map(
        (await store.db.selectFrom("scores").select(["customer_id", "probability"]).execute()).map((r) => [r.customer_id, Number(r.probability)]),
      );
      expect(written.every((r) => stored.get(String(r.customer_id)) === r.probability)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("`quarantine latest` shows the most recently finished run, and says which one it chose", async () => {
    const dbUrl = `sqlite://${join(workdir, "latest.db")}`;
    const env = { CHURNOPS_HOME: fixture.home, CHURNOPS_DB_URL: dbUrl };
    const store = await openStore(dbUrl);
    try {
      // A later date first, then an earlier date with a bad row: the latter finished last, so it is `latest`.
      await scoreBatch(base(store, fixture.dataPath, "2026-12-05"));
      const rows = await duck(
        "SELECT * REPLACE (CASE WHEN customer_id = (SELECT min(customer_id) FROM customers) THEN -1 ELSE tenure_months END AS tenure_months) FROM customers LIMIT 100",
      );
      const csv = join(workdir, "latest.csv");
      const cols = Object.keys(rows[0] as object);
      writeFileSync(csv, [cols.join(","), ...rows.map((r) => cols.map((c) => String(r[c] ?? "")).join(","))].join("\n"));
      const older = await scoreBatch(base(store, csv, "2026-11-29"));
      expect(older.rowsQuarantined).toBe(1);
      const shown = await runCli(["quarantine", "latest"], env);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(new RegExp(`^Run ${older.runId} \\(latest: the most recently finished, at .*\\): 1 quarantined rows`));
      expect(shown.stdout).toContain("tenure_months: -1 is below the minimum 0");
    } finally {
      await store.close();
    }
  });
});
