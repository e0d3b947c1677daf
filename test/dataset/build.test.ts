import { mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, describe, expect, it } from "vitest";
import { buildDataset } from "../../src/dataset/build.js";
import { parseHorizon } from "../../src/dataset/horizon.js";
import { weightedRocAuc } from "../../src/monitoring/performance.js";
import { keepSnapshotRecord } from "../../src/store/datasets.js";
import { openStore, type Store } from "../../src/store/db.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { completeRun, storeTargets } from "../helpers/stores.js";

const dir = () => mkdtempSync(join(tmpdir(), "churnops-dataset-"));

type Cell = string | number | null;

function writeCsv(path: string, rows: readonly Record<string, Cell>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  writeFileSync(path, [cols.join(","), ...rows.map((r) => cols.map((c) => (r[c] === null || r[c] === undefined ? "" : String(r[c]))).join(","))].join("\n"));
  return path;
}

async function keep(store: Store, date: string, path: string): Promise<void> {
  await keepSnapshotRecord(store, { date, run_id: `monthly-${date}-churn-v1`, source: path, path, rows: 0, columns: "[]", kept_at: `${date}T00:00:00Z` });
}

async function readRows(path: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(`SELECT * FROM read_parquet('${path}')`)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const outcome = (id: string, day: string, churned: number) => ({ customer_id: id, observed_at: day, churned, source: "test", ingested_at: `${day}T12:00:00Z` });
const base = { idColumn: "customer_id", label: { column: "churned", positive: "1" }, horizonDays: 30 };

let open: Store[] = [];
afterEach(async () => {
  for (const s of open) await s.close();
  open = [];
});

describe.each(storeTargets)("point-in-time dataset build on $name", (target) => {
  const fresh = async (): Promise<Store> => {
    const s = await openStore(await target.fresh());
    open.push(s);
    return s;
  };

  it("never labels a row from an outcome on or before its snapshot date, and needs evidence that a customer stayed", async () => {
    const store = await fresh();
    const d = dir();
    // Each customer's snapshot carries its own (stale, wrong) churned column: it must never pass through as the label.
    await keep(
      store,
      "2026-01-01",
      writeCsv(join(d, "s1.csv"), [
        { customer_id: "same-day", tenure: 1, churned: 0 },
        { customer_id: "before", tenure: 2, churned: 0 },
        { customer_id: "inside", tenure: 3, churned: 0 },
        { customer_id: "stayed", tenure: 4, churned: 1 },
        { customer_id: "later", tenure: 5, churned: 1 },
        { customer_id: "silent", tenure: 6, churned: 0 },
        { customer_id: "edge", tenure: 7, churned: 0 },
      ]),
    );
    await upsertOutcomes(store, [
      outcome("same-day", "2026-01-01", 1),
      outcome("before", "2025-12-15", 1),
      outcome("inside", "2026-01-10", 1),
      outcome("stayed", "2026-01-31", 0),
      outcome("later", "2026-01-31", 0),
      outcome("later", "2026-02-20", 1),
      outcome("edge", "2026-01-31", 1),
      outcome("silent", "2025-12-01", 0),
      outcome("anyone-else", "2026-03-01", 0),
    ]);
    const s = await buildDataset(store, { ...base, asOf: "2026-03-01", out: join(d, "set.parquet") });
    const rows = await readRows(s.out);
    const labels = Object.fromEntries(rows.map((r) => [String(r.customer_id), Number(r.churned)]));
    // "edge" churned on day 30 of a 30-day horizon: inside it. "later" churned after its horizon ended: it stayed through it.
    expect(labels).toEqual({ inside: 1, edge: 1, stayed: 0, later: 0 });
    expect(s.left_out).toMatchObject({ already_churned: 2, unobserved: 1, censored: 0 });
    expect(s).toMatchObject({ rows: 4, positives: 2, negatives: 2, labels_through: "2026-03-01", rows_read: 7 });
    // An outcome the store learns after as-of is not known then.
    const earlier = await buildDataset(store, { ...base, asOf: "2026-01-20", out: join(d, "early.parquet") });
    expect(earlier).toMatchObject({ rows: 0, labels_through: "2026-01-10" });
    expect(earlier.left_out.censored).toBe(5);
  });

  it("takes each row's features from its own snapshot only, and censors rows whose horizon has not ended", async () => {
    const store = await fresh();
    const d = dir();
    for (const [date, tickets] of [
      ["2026-01-01", 1],
      ["2026-02-01", 5],
      ["2026-03-01", 9],
    ] as const)
      await keep(
        store,
        date,
        writeCsv(join(d, `${date}.csv`), [
          { customer_id: "a", tickets, plan: `p${tickets}` },
          { customer_id: "b", tickets: tickets + 100, plan: "x" },
        ]),
      );
    await upsertOutcomes(store, [outcome("a", "2026-02-01", 0), outcome("b", "2026-02-01", 0), outcome("a", "2026-03-01", 0), outcome("b", "2026-02-20", 1)]);
    const four = { ...base, horizonDays: 28 };
    const s = await buildDataset(store, { ...four, asOf: "2026-03-20", out: join(d, "set.parquet") });
    const rows = (await readRows(s.out)).map((r) => [r.snapshot_date, r.customer_id, Number(r.tickets), r.plan, Number(r.churned)]);
    expect(rows).toEqual([
      ["2026-01-01", "a", 1, "p1", 0],
      ["2026-01-01", "b", 101, "x", 0],
      ["2026-02-01", "a", 5, "p5", 0],
      ["2026-02-01", "b", 105, "x", 1],
    ]);
    // March's horizon ends 2026-03-29, after the last outcome day (03-01): a's row is censored, counted; b had left.
    expect(s.left_out).toMatchObject({ censored: 1, already_churned: 1 });
    expect(s.snapshots.map((x) => x.date)).toEqual(["2026-01-01", "2026-02-01", "2026-03-01"]);
    // A window keeps only the snapshots dated in it.
    const feb = await buildDataset(store, { ...four, asOf: "2026-03-20", from: "2026-02-01", to: "2026-02-28", out: join(d, "feb.parquet") });
    expect(feb).toMatchObject({ rows: 2, positives: 1, snapshots: [{ date: "2026-02-01" }] });
  });

  it("leaves out members treated inside the label window, keeps and marks the control group", async () => {
    const store = await fresh();
    const d = dir();
    await keep(
      store,
      "2026-01-01",
      writeCsv(
        join(d, "s.csv"),
        ["t1", "t2", "c1", "c2", "old", "none"].map((id) => ({ customer_id: id, x: 1 })),
      ),
    );
    await store.db
      .insertInto("score_runs")
      .values(completeRun({ runId: "r", kind: "monthly", asOf: "2026-01-01", rows: 6, source: "s" }))
      .execute();
    const campaign = (name: string, asOf: string) => ({
      name,
      run_id: "r",
      as_of: asOf,
      model_name: "churn",
      model_version: "1",
      rule: "{}",
      ranking: "risk" as const,
      params: "{}",
      seed: 1,
      budget: null,
      control_share: 0.5,
      cooldown_days: 30,
      offer: null,
      offer_cost: null,
      counts: "{}",
      treated: 2,
      control: 2,
      planned_at: `${asOf}T00:00:00Z`,
    });
    await store.db
      .insertInto("campaigns")
      .values([campaign("jan", "2026-01-01"), campaign("dec", "2025-12-01")])
      .execute();
    const member = (c: string, id: string, arm: "treatment" | "control") => ({
      campaign: c,
      customer_id: id,
      arm,
      rank: 1,
      probability: 0.9,
      band: "high",
      model_version: "1",
      value: null,
      expected_value: null,
      planned_at: "2026-01-01T00:00:00Z",
    });
    await store.db
      .insertInto("campaign_members")
      .values([
        member("jan", "t1", "treatment"),
        member("jan", "t2", "treatment"),
        member("jan", "c1", "control"),
        member("jan", "c2", "control"),
        member("dec", "old", "treatment"),
      ])
      .execute();
    await upsertOutcomes(
      store,
      ["t1", "t2", "c1", "c2", "old", "none"].map((id) => outcome(id, "2026-01-31", id === "c1" ? 1 : 0)),
    );
    const s = await buildDataset(store, { ...base, asOf: "2026-02-01", out: join(d, "set.parquet") });
    const rows = (await readRows(s.out)).map((r) => [r.customer_id, r.campaign_arm, Number(r.churned)]);
    // A December offer came before the January snapshot: the snapshot already shows its effect, so the row stays.
    expect(rows).toEqual([
      ["c1", "control", 1],
      ["c2", "control", 0],
      ["none", null, 0],
      ["old", null, 0],
    ]);
    expect(s).toMatchObject({ treated_policy: "exclude", control_rows: 2, left_out: { treated: 2 } });
  });

  it("is deterministic: the same rows in another file order give the same fingerprint, another label another one", async () => {
    const store = await fresh();
    const d = dir();
    const rows = Array.from({ length: 50 }, (_, i) => ({ customer_id: `c${String(i).padStart(3, "0")}`, x: i * 0.5 }));
    await keep(store, "2026-01-01", writeCsv(join(d, "a.csv"), rows));
    await upsertOutcomes(
      store,
      rows.map((r, i) => outcome(r.customer_id, i % 3 === 0 ? "2026-01-20" : "2026-01-31", i % 3 === 0 ? 1 : 0)),
    );
    const first = await buildDataset(store, { ...base, asOf: "2026-02-15", out: join(d, "1.parquet") });
    const again = await buildDataset(store, { ...base, asOf: "2026-02-15", out: (f) => join(d, `${f}.parquet`) });
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(again.out).toBe(join(d, `${first.fingerprint}.parquet`));
    const otherStore = await fresh();
    await keep(otherStore, "2026-01-01", writeCsv(join(d, "b.csv"), [...rows].reverse()));
    await upsertOutcomes(
      otherStore,
      rows.map((r, i) => outcome(r.customer_id, i % 3 === 0 ? "2026-01-20" : "2026-01-31", i % 3 === 0 ? 1 : 0)),
    );
    expect((await buildDataset(otherStore, { ...base, asOf: "2026-02-15", out: join(d, "2.parquet") })).fingerprint).toBe(first.fingerprint);
    await upsertOutcomes(otherStore, [outcome("c001", "2026-01-21", 1)]);
    expect((await buildDataset(otherStore, { ...base, asOf: "2026-02-15", out: join(d, "3.parquet") })).fingerprint).not.toBe(first.fingerprint);
    const recorded = await store.db.selectFrom("dataset_builds").selectAll().execute();
    expect(recorded.map((r) => [r.fingerprint, Number(r.rows), Number(r.positives)])).toEqual([[first.fingerprint, 50, 17]]);
  });

  it("reads a run's own input file while it is unchanged, and refuses it (with the reason) once it changed", async () => {
    const store = await fresh();
    const d = dir();
    const path = writeCsv(join(d, "today.csv"), [{ customer_id: "a", x: 1 }]);
    const identity = (size: number, modified: string) => JSON.stringify({ kind: "file", location: path, relation: null, size, modified });
    const { statSync } = await import("node:fs");
    const st = statSync(path);
    await store.db
      .insertInto("score_runs")
      .values(
        completeRun({
          runId: "daily-2026-01-01-churn-v1",
          kind: "daily",
          asOf: "2026-01-01",
          rows: 1,
          source: path,
          input: identity(st.size, st.mtime.toISOString()),
        }),
      )
      .execute();
    // Another customer's outcome on 02-01 tells that outcomes are known through then, so the horizon has ended.
    await upsertOutcomes(store, [outcome("a", "2026-01-15", 1), outcome("z", "2026-02-01", 0)]);
    const ok = await buildDataset(store, { ...base, asOf: "2026-02-01", out: join(d, "ok.parquet") });
    expect(ok).toMatchObject({ rows: 1, positives: 1, snapshots: [{ origin: "run", path }] });
    // The next day's export overwrote the file: its rows are not 2026-01-01's any more.
    writeCsv(path, [{ customer_id: "a", x: 2 }]);
    utimesSync(path, new Date("2026-01-02T00:00:00Z"), new Date("2026-01-02T00:00:00Z"));
    await expect(buildDataset(store, { ...base, asOf: "2026-02-01", out: join(d, "bad.parquet") })).rejects.toThrow(
      /2026-01-01: .*changed since the run read it/,
    );
  });
});

describe("the leakage guard", () => {
  it("a column filled only after a customer left never reaches the training row of its own label window", async () => {
    const store = await openStore(await (storeTargets[0] as (typeof storeTargets)[number]).fresh());
    open.push(store);
    const d = dir();
    // 6 monthly snapshots of 1500 customers; churn depends on `tickets`. Like a CRM export, a customer who left stays
    // in later snapshots with `closed_reason` filled in (the planted leak); the churn outcome is dated the churn day.
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const dates = ["2026-01-01", "2026-01-31", "2026-03-02", "2026-04-01", "2026-05-01", "2026-05-31"];
    const churnDay = new Map<string, string>();
    const tickets = new Map<string, number>();
    for (let i = 0; i < 1500; i++) tickets.set(`c${i}`, Math.floor(rand() * 6));
    const outcomes = [];
    for (let m = 0; m < dates.length; m++) {
      const date = dates[m] as string;
      const rows: Record<string, Cell>[] = [];
      for (const [id, t] of tickets) {
        const gone = churnDay.get(id);
        rows.push({ customer_id: id, tickets: t, closed_reason: gone !== undefined && gone < date ? "moved_to_competitor" : null });
      }
      await keep(store, date, writeCsv(join(d, `${date}.csv`), rows));
      const next = dates[m + 1];
      if (next === undefined) break;
      for (const [id, t] of tickets) {
        if (churnDay.has(id)) continue;
        if (rand() < 0.04 + 0.05 * t) {
          const day = new Date(Date.parse(`${date}T00:00:00Z`) + (1 + Math.floor(rand() * 28)) * 86_400_000).toISOString().slice(0, 10);
          churnDay.set(id, day);
          outcomes.push(outcome(id, day, 1));
        } else outcomes.push(outcome(id, next, 0));
      }
    }
    await upsertOutcomes(store, outcomes);
    const s = await buildDataset(store, { ...base, asOf: "2026-06-30", out: join(d, "set.parquet") });
    const rows = await readRows(s.out);
    expect(rows.filter((r) => r.closed_reason !== null)).toEqual([]);
    expect(s.positives).toBeGreaterThan(200);
    expect(s.left_out.already_churned).toBeGreaterThan(200);
    const auc = (score: (r: Record<string, unknown>) => number) =>
      weightedRocAuc(rows.map((r) => ({ probability: score(r), predicted: false, churned: Number(r.churned) === 1, weight: 1 })));
    // The leak carries nothing in the point-in-time set; the real signal still does.
    expect(auc((r) => (r.closed_reason === null ? 0 : 1))).toBe(0.5);
    expect(auc((r) => Number(r.tickets))).toBeGreaterThan(0.65);
    // The naive join this guards against (today's table, labelled "ever churned") is led by the leak.
    const naive = [...tickets.keys()].map((id) => ({
      probability: churnDay.has(id) && (churnDay.get(id) as string) < (dates[5] as string) ? 1 : 0,
      predicted: false,
      churned: churnDay.has(id),
      weight: 1,
    }));
    expect(weightedRocAuc(naive)).toBeGreaterThan(0.95);
  });
});

describe("horizon", () => {
  it("reads days and weeks and refuses anything else with the flag named", () => {
    expect(parseHorizon("30d")).toBe(30);
    expect(parseHorizon("4w")).toBe(28);
    expect(parseHorizon("45")).toBe(45);
    expect(() => parseHorizon("1m")).toThrow(/--horizon "1m": expected a number of days such as 30d/);
    expect(() => parseHorizon("0d")).toThrow(/--horizon/);
  });
});
