import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore } from "../../src/store/db.js";
import { getRun, quarantined } from "../../src/store/runs.js";
import { decodeFeatures, encodeFeatures, featureCode, featureCondition, MISSING_CODE, storedCategoricalFeatures } from "../../src/store/score-features.js";
import { startCli } from "../helpers/cli.js";
import { storeTargets } from "../helpers/stores.js";

const fixture = inject("fixture");
let model: ChurnModel;
let workdir: string;

async function readRows(path: string, limit: number): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const reader = await conn.runAndReadAll(`SELECT * FROM read_parquet('${path}') LIMIT ${limit}`);
  const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
  conn.closeSync();
  instance.closeSync();
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])));
}

function toCsv(rows: Record<string, unknown>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const cell = (v: unknown) => (v === null || v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n");
}

beforeAll(async () => {
  model = await ChurnModel.load(fixture.bundleDir);
  workdir = mkdtempSync(join(tmpdir(), "churnops-batch-"));
});
afterAll(async () => {
  await model.close();
});

describe.each(storeTargets)("batch scoring into $name", (target) => {
  it("scores every customer once, with the model version, and a re-run of the same day adds nothing", async () => {
    const store = await openStore(await target.fresh());
    try {
      const first = await scoreBatch({
        source: { data: fixture.dataPath },
        model,
        kind: "daily",
        asOf: "2026-11-02",
        store,
        chunkSize: 1000,
        badRows: "quarantine",
      });
      expect(first.status).toBe("complete");
      expect(first.rowsScored + first.rowsQuarantined).toBe(4000);
      expect(first.rowsScored).toBe(4000);
      const versions = await store.db
        .selectFrom("scores")
        .select(["model_version", (eb) => eb.fn.countAll<number>().as("n")])
        .groupBy("model_version")
        .execute();
      expect(versions.map((v) => [v.model_version, Number(v.n)])).toEqual([[fixture.version, 4000]]);
      const again = await scoreBatch({
        source: { data: fixture.dataPath },
        model,
        kind: "daily",
        asOf: "2026-11-02",
        store,
        chunkSize: 1000,
        badRows: "quarantine",
      });
      expect(again.status).toBe("already_complete");
      const n = await store.db
        .selectFrom("scores")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      expect(Number(n.n)).toBe(4000);
    } finally {
      await store.close();
    }
  });
});

describe.each(storeTargets)("categorical inputs stored with the scores, in $name", (target) => {
  it("keeps each score's categorical values as one code per feature of the bundle, decoded back to the input's values", async () => {
    const rows = await readRows(fixture.dataPath, 4000);
    const csv = join(workdir, `categories-${target.name}.csv`);
    writeFileSync(csv, toCsv(rows));
    const store = await openStore(await target.fresh());
    try {
      const summary = await scoreBatch({ source: { data: csv }, model, kind: "daily", asOf: "2026-11-03", store, chunkSize: 700, badRows: "quarantine" });
      expect(summary.rowsScored).toBe(4000);
      const features = storedCategoricalFeatures(model.bundle);
      expect(features.map((f) => f.name)).toEqual(["contract_type", "payment_method"]);
      const stored = await store.db.selectFrom("scores").select(["customer_id", "features"]).where("run_id", "=", summary.runId).execute();
      expect(stored.length).toBe(4000);
      const byId = new Map(rows.map((r) => [String(r.customer_id), r]));
      for (const s of stored) {
        const input = byId.get(s.customer_id) as Record<string, unknown>;
        expect(decodeFeatures(s.features, features)).toEqual({ contract_type: input.contract_type ?? null, payment_method: input.payment_method ?? null });
      }
      // A missing value (the bundle's missing token) or one the bundle does not list is 0xFF, decoded as null.
      const encoded = encodeFeatures(features, model.bundle.schema.missing_token, {
        size: 3,
        columns: new Map([
          ["contract_type", ["two_year", model.bundle.schema.missing_token, "month-to-month"]],
          ["payment_method", { kind: "codes", codes: Uint16Array.from([1, 0, 2]), dictionary: ["cheque", "electronic", "credit_card"] }],
        ]),
      });
      expect([...encoded]).toEqual([2, 2, MISSING_CODE, MISSING_CODE, 0, 1]);
      expect(decodeFeatures(encoded.subarray(2, 4), features)).toEqual({ contract_type: null, payment_method: null });
      expect(decodeFeatures(encoded.subarray(4, 6), features)).toEqual({ contract_type: "month-to-month", payment_method: "credit_card" });
      // The SQL filter the console builds on: month-to-month customers of the run, counted in the database.
      const { byte, code } = featureCode(features, "contract_type", "month-to-month");
      const n = await store.db
        .selectFrom("scores")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("run_id", "=", summary.runId)
        .where(featureCondition(store.dialect, "features", byte, code))
        .executeTakeFirstOrThrow();
      expect(Number(n.n)).toBe(rows.filter((r) => r.contract_type === "month-to-month").length);
    } finally {
      await store.close();
    }
  });
});

describe.each(storeTargets)("a run whose claim is taken over, into $name", (target) => {
  // On SQLite the chunks commit on a writer thread one chunk behind; the takeover must still stop the run
  // with the same error, no chunk committed after it, and the run marked failed.
  it("stops with run_locked and commits nothing after the takeover", async () => {
    const store = await openStore(await target.fresh());
    try {
      let stolen = false;
      const run = scoreBatch({
        source: { data: fixture.dataPath },
        model,
        kind: "daily",
        asOf: "2026-11-05",
        store,
        chunkSize: 500,
        badRows: "quarantine",
        onProgress: () => {
          if (stolen) return;
          stolen = true;
          // Another scorer (alive, on another host) claims the run after the first chunk was handed over.
          void store.db.updateTable("score_runs").set({ lease_owner: "elsewhere/1/abcd", lease_expires_at: "2999-01-01T00:00:00.000Z" }).execute();
        },
      });
      await expect(run).rejects.toMatchObject({ code: "run_locked" });
      const row = await store.db.selectFrom("score_runs").selectAll().executeTakeFirstOrThrow();
      expect(row.status).toBe("failed");
      const n = Number(
        (
          await store.db
            .selectFrom("scores")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
      // Whole chunks only (what was committed before the takeover), fewer than the file, and the checkpoint
      // says exactly how many rows they hold (no quarantine in this file).
      expect(n).toBeLessThan(4000);
      expect(row.checkpoint_rows).toBe(n);
    } finally {
      await store.close();
    }
  });
});

describe("bad rows", () => {
  it("quarantines each kind of bad row with a reason naming the field, and scores the rest", async () => {
    const rows = await readRows(fixture.dataPath, 50);
    const bad = rows.map((r) => ({ ...r }));
    Object.assign(bad[1] as object, { tenure_months: -1 });
    Object.assign(bad[2] as object, { contract_type: "weekly" });
    Object.assign(bad[3] as object, { monthly_charges: "lots" });
    Object.assign(bad[4] as object, { num_logins_30d: null });
    Object.assign(bad[5] as object, { customer_id: (bad[0] as Record<string, unknown>).customer_id });
    Object.assign(bad[6] as object, { customer_id: null });
    const csv = join(workdir, "bad.csv");
    writeFileSync(csv, toCsv(bad));
    const store = await openStore(`sqlite://${join(workdir, "bad.db")}`);
    try {
      const summary = await scoreBatch({ source: { data: csv }, model, kind: "daily", asOf: "2026-11-03", store, chunkSize: 16, badRows: "quarantine" });
      expect(summary.rowsScored).toBe(44);
      expect(summary.rowsQuarantined).toBe(6);
      const reasons = (await quarantined(store, summary.runId)).map((q) => [q.row_number, q.reason]);
      expect(reasons).toEqual([
        [2, expect.stringContaining("tenure_months: -1 is below the minimum 0")],
        [3, expect.stringContaining('contract_type: "weekly" is a category the model never saw')],
        [4, expect.stringContaining('monthly_charges: "lots" is not a number')],
        [5, expect.stringContaining("num_logins_30d: a value is required")],
        [6, expect.stringMatching(/duplicate customer id .* \(already scored from row 1\)/)],
        [7, expect.stringContaining("the customer id is empty")],
      ]);
      await expect(scoreBatch({ source: { data: csv }, model, kind: "daily", asOf: "2026-11-04", store, chunkSize: 16, badRows: "fail" })).rejects.toThrow(
        /row 2 \(customer .*\): tenure_months: -1 is below the minimum 0/,
      );
      expect((await getRun(store, `daily-2026-11-04-${model.name}-v${model.version}`)).status).toBe("failed");
    } finally {
      await store.close();
    }
  });

  it("refuses a table that lacks a column the model needs, naming it", async () => {
    const rows = (await readRows(fixture.dataPath, 5)).map(({ contract_type: _drop, ...rest }) => rest);
    const csv = join(workdir, "nocol.csv");
    writeFileSync(csv, toCsv(rows));
    await expect(
      scoreBatch({
        source: { data: csv },
        model,
        kind: "daily",
        asOf: "2026-11-05",
        store: null,
        out: join(workdir, "x.csv"),
        chunkSize: 16,
        badRows: "quarantine",
      }),
    ).rejects.toThrow(/has no column "contract_type"/);
  });
});

describe.each(storeTargets)("kill and resume on $name", (target) => {
  it("completes a run of shuffled ids killed half way with SIGKILL, with exactly one score per customer, and a re-run adds nothing", async () => {
    const sorted = join(workdir, "big.parquet");
    if (!existsSync(sorted))
      execFileSync(fixture.python, ["-m", "churnops_trainer", "synth", "--rows", "200000", "--seed", "5", "--out", sorted], {
        env: { ...process.env, CHURNOPS_HOME: fixture.home },
        stdio: "ignore",
      });
    // Ids in no order: the write path's cost and correctness must not depend on it (issue 21.2).
    const big = join(workdir, `shuffled-${target.name}.parquet`);
    const duck = await DuckDBInstance.create(":memory:");
    const conn = await duck.connect();
    await conn.run(`COPY (SELECT * FROM read_parquet('${sorted}') ORDER BY hash(customer_id)) TO '${big}' (FORMAT parquet)`);
    conn.closeSync();
    duck.closeSync();
    const dbUrl = await target.fresh();
    const env = { CHURNOPS_HOME: fixture.home, CHURNOPS_DB_URL: dbUrl };
    const args = ["score", "--data", big, "--model", fixture.bundleDir, "--as-of", "2026-11-06", "--chunk-size", "500", "--json"];
    const { child, done } = startCli(args, env);
    const store = await openStore(dbUrl);
    try {
      const runId = `daily-2026-11-06-churn-v${fixture.version}`;
      for (;;) {
        const row = await store.db.selectFrom("score_runs").select(["checkpoint_rows", "status"]).where("run_id", "=", runId).executeTakeFirst();
        if (row !== undefined && row.checkpoint_rows >= 20_000) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
      const killed = await done;
      expect(killed.signal).toBe("SIGKILL");
      const mid = await getRun(store, runId);
      expect(mid.status).toBe("running");
      expect(mid.checkpoint_rows).toBeLessThan(200_000);

      const resumed = await startCli(args, env).done;
      expect(resumed.stderr).toBe("");
      const summary = JSON.parse(resumed.stdout) as { status: string; resumed_from: number; rows_read: number };
      expect(summary.status).toBe("complete");
      expect(summary.resumed_from).toBe(mid.checkpoint_rows);
      expect(summary.rows_read).toBe(200_000);
      const count = async () => {
        const counts = await store.db
          .selectFrom("scores")
          .select([(eb) => eb.fn.countAll<number>().as("n"), (eb) => eb.fn.count<number>("customer_id").distinct().as("d")])
          .where("run_id", "=", runId)
          .executeTakeFirstOrThrow();
        return { n: Number(counts.n), d: Number(counts.d) };
      };
      const counts = await count();
      const final = await getRun(store, runId);
      expect(counts.n).toBe(counts.d);
      expect(counts.n + final.rows_quarantined).toBe(200_000);
      expect(final.rows_scored).toBe(counts.n);

      // The same command again: the run is complete, nothing is added.
      const again = await startCli(args, env).done;
      expect(again.stderr).toBe("");
      expect(await count()).toEqual(counts);
      expect((await getRun(store, runId)).rows_scored).toBe(counts.n);
    } finally {
      await store.close();
    }
  });
});

describe("scoring to a file without a store", () => {
  it("writes every scored row in input order, quarantines the rest, and writes no file when the run fails", async () => {
    const rows = await readRows(fixture.dataPath, 3000);
    Object.assign(rows[10] as object, { tenure_months: -1 });
    const csv = join(workdir, "nostore.csv");
    writeFileSync(csv, toCsv(rows));
    const out = join(workdir, "nostore-scores.parquet");
    // Small chunks: many hand-overs to the file thread, more than it may hold at once.
    const summary = await scoreBatch({
      source: { data: csv },
      model,
      kind: "daily",
      asOf: "2026-11-07",
      store: null,
      out,
      chunkSize: 100,
      badRows: "quarantine",
    });
    expect(summary.rowsScored).toBe(2999);
    expect(summary.rowsQuarantined).toBe(1);
    const written = await readRows(out, 10_000);
    const expectedIds = rows.filter((_, i) => i !== 10).map((r) => String(r.customer_id));
    expect(written.map((r) => r.customer_id)).toEqual(expectedIds);
    expect(new Set(written.map((r) => r.model_version))).toEqual(new Set([model.version]));
    expect(written.filter((r) => r.decision === true).length).toBe(written.filter((r) => (r.probability as number) >= model.threshold).length);

    const failedOut = join(workdir, "nostore-failed.parquet");
    // The file thread keeps its scratch data under the temporary directory it starts with: a private one here.
    const scratch = mkdtempSync(join(workdir, "tmp-"));
    const tmpdirBefore = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    try {
      await expect(
        scoreBatch({ source: { data: csv }, model, kind: "daily", asOf: "2026-11-08", store: null, out: failedOut, chunkSize: 100, badRows: "fail" }),
      ).rejects.toThrow(/row 11 .*tenure_months: -1 is below the minimum 0/);
    } finally {
      if (tmpdirBefore === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdirBefore;
    }
    expect(existsSync(failedOut)).toBe(false);
    // (tsx, which runs the thread from source in tests, leaves its cache there too.)
    expect(readdirSync(scratch).filter((name) => name.startsWith("churnops-"))).toEqual([]);
  });
});

describe("an input that fits in one chunk", () => {
  it("is scored on this thread into the same stored scores and file as the threaded many-chunk run, and a failed one writes no file", async () => {
    const sqlite = storeTargets.find((t) => t.name === "sqlite");
    if (sqlite === undefined) throw new Error("no SQLite store target");
    const store = await openStore(await sqlite.fresh());
    // Loaded as the CLI loads it: the inference thread starts only for an input of more than one chunk.
    const onDemand = await ChurnModel.load(fixture.bundleDir, { inferenceWorker: "on-demand" });
    try {
      const run = async (asOf: string, chunkSize: number) => {
        const out = join(workdir, `one-chunk-${asOf}.parquet`);
        const summary = await scoreBatch({
          source: { data: fixture.dataPath },
          model: onDemand,
          kind: "daily",
          asOf,
          store,
          out,
          chunkSize,
          badRows: "quarantine",
        });
        const stored = await store.db
          .selectFrom("scores")
          .select(["customer_id", "probability", "band", "decision"])
          .where("run_id", "=", summary.runId)
          .orderBy("customer_id")
          .execute();
        const written = (await readRows(out, 10_000)).map((r) => [r.customer_id, r.probability, r.band, r.decision]);
        return { summary, stored, written };
      };
      const single = await run("2026-11-20", 5000);
      const threaded = await run("2026-11-21", 700);
      expect(single.summary.rowsScored).toBe(4000);
      expect(single.stored).toHaveLength(4000);
      expect(single.stored).toEqual(threaded.stored);
      expect(single.written).toEqual(threaded.written);
      expect(single.written.map(([id]) => id)).toEqual((await readRows(fixture.dataPath, 10_000)).map((r) => String(r.customer_id)));
      expect(single.summary.bands).toEqual(threaded.summary.bands);

      const rows = await readRows(fixture.dataPath, 50);
      Object.assign(rows[3] as object, { tenure_months: -1 });
      const csv = join(workdir, "one-chunk-bad.csv");
      writeFileSync(csv, toCsv(rows));
      const failedOut = join(workdir, "one-chunk-failed.csv");
      await expect(
        scoreBatch({ source: { data: csv }, model: onDemand, kind: "daily", asOf: "2026-11-22", store, out: failedOut, chunkSize: 5000, badRows: "fail" }),
      ).rejects.toThrow(/row 4 .*tenure_months/);
      expect(existsSync(failedOut)).toBe(false);
      expect((await getRun(store, `daily-2026-11-22-${onDemand.name}-v${onDemand.version}`)).status).toBe("failed");
    } finally {
      await onDemand.close();
      await store.close();
    }
  });
});
