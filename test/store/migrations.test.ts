import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openSqlite, openStore } from "../../src/store/db.js";
import { migrations } from "../../src/store/migrations/index.js";
import type { Database } from "../../src/store/schema.js";
import { countRows, storeTargets } from "../helpers/stores.js";

/** A store as the previous release left it: every migration up to and including `last`. */
async function storeUpTo(url: string, last: string): Promise<Kysely<Database>> {
  let db: Kysely<Database>;
  let schema: string | undefined;
  if (url.startsWith("sqlite://")) db = new Kysely<Database>({ dialect: new SqliteDialect({ database: openSqlite(url.slice("sqlite://".length)) }) });
  else {
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
    schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s;
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, ...(schema === undefined ? {} : { migrationTableSchema: schema }) });
  const { error } = await migrator.migrateTo(last);
  if (error !== undefined) throw error;
  return db;
}

const run = (id: string, asOf: string) => ({
  run_id: id,
  kind: "daily" as const,
  as_of: asOf,
  model_name: "churn",
  model_version: "3",
  source: "customers.parquet",
  status: "complete" as const,
  started_at: "2026-11-01T00:00:00.000Z",
  finished_at: "2026-11-01T00:01:00.000Z",
  rows_read: 2,
  rows_scored: 2,
  rows_quarantined: 1,
  checkpoint_rows: 3,
  duration_ms: 60_000,
  error: null,
  lease_owner: null,
  lease_expires_at: null,
  input: null,
  input_fingerprint: null,
});

describe.each(storeTargets)("store migrations on $name", (target) => {
  it("019 (re-runs in a run of their own) keeps every run, score, quarantined row and profile of an existing store", async () => {
    const url = await target.fresh();
    const old = await storeUpTo(url, "015_estimates");
    for (const asOf of ["2026-11-01", "2026-11-02"]) {
      const id = `daily-${asOf}-churn-v3`;
      // Inserted without `replaces`: the column does not exist yet.
      await (old as unknown as Kysely<Record<string, Record<string, unknown>>>).insertInto("score_runs").values(run(id, asOf)).execute();
      await old
        .insertInto("scores")
        .values(
          ["a", "b"].map((c) => ({
            run_id: id,
            customer_id: c,
            probability: 0.5,
            band: "high",
            decision: 1,
            model_name: "churn",
            model_version: "3",
            scored_at: asOf,
          })),
        )
        .execute();
      await old.insertInto("quarantine").values({ run_id: id, row_number: 3, customer_id: "c", reason: "tenure_months: missing" }).execute();
      await old.insertInto("run_profiles").values({ run_id: id, profile: "{}" }).execute();
    }
    await old.destroy();

    const store = await openStore(url);
    try {
      expect(await countRows(store, "score_runs")).toBe(2);
      expect(await countRows(store, "scores")).toBe(4);
      expect(await countRows(store, "quarantine")).toBe(2);
      expect(await countRows(store, "run_profiles")).toBe(2);
      const migrated = await store.db.selectFrom("score_runs").selectAll().orderBy("run_id").execute();
      // run_key: the run's integer key in the store (migration 020).
      expect(migrated[0]).toEqual({ ...run("daily-2026-11-01-churn-v3", "2026-11-01"), replaces: null, pruned_at: null, run_key: expect.any(Number) });
      // The natural key still holds among the runs people read; a re-run's own run is outside it.
      await expect(
        store.db
          .insertInto("score_runs")
          .values({ ...run("other-id", "2026-11-01"), replaces: null, pruned_at: null })
          .execute(),
      ).rejects.toThrow(/unique/i);
      await store.db
        .insertInto("score_runs")
        .values({ ...run("daily-2026-11-01-churn-v3~rerun", "2026-11-01"), status: "running", replaces: "daily-2026-11-01-churn-v3", pruned_at: null })
        .execute();
      // Foreign keys still point at the rebuilt table.
      await expect(
        store.db
          .insertInto("scores")
          .values({
            run_id: "no-such-run",
            customer_id: "x",
            probability: 0.1,
            band: "low",
            decision: 0,
            model_name: "churn",
            model_version: "3",
            scored_at: "t",
          })
          .execute(),
      ).rejects.toThrow(/foreign key/i);
    } finally {
      await store.close();
    }
  });

  it("020 (compact scores) moves every score of a store filled by 019's schema, and the store keeps working", async () => {
    const url = await target.fresh();
    const old = await storeUpTo(url, "019_run_replaces");
    const raw = old as unknown as Kysely<Record<string, Record<string, unknown>>>;
    const ids = Array.from({ length: 2500 }, (_, i) => `C${String((i * 7919) % 2500).padStart(5, "0")}`);
    const bands = ["low", "medium", "high"];
    const expected: Record<string, unknown>[] = [];
    for (const [n, asOf] of ["2026-11-01", "2026-11-02", "2026-11-03"].entries()) {
      const id = `daily-${asOf}-churn-v3`;
      await raw
        .insertInto("score_runs")
        .values({ ...run(id, asOf), replaces: null, pruned_at: null, rows_scored: ids.length })
        .execute();
      const rows = ids.map((c, i) => ({
        run_id: id,
        customer_id: c,
        // float32 values widened, as the scorer stores them; one exactly 0 and one exactly 1.
        probability: i === 0 ? 0 : i === 1 ? 1 : Math.fround(((i * 37 + n) % 1000) / 1000),
        band: bands[(i + n) % 3] as string,
        decision: i % 2,
        model_name: "churn",
        model_version: "3",
        scored_at: `${asOf}T00:00:30.000Z`,
        reasons: i % 5 === 0 ? JSON.stringify([{ feature: "tenure_months", text: "short\ttenure" }]) : null,
      }));
      for (let i = 0; i < rows.length; i += 500)
        await raw
          .insertInto("scores")
          .values(rows.slice(i, i + 500))
          .execute();
      expected.push(...rows);
    }
    await old.destroy();

    const store = await openStore(url);
    try {
      const moved = await store.db
        .selectFrom("scores")
        .select(["run_id", "customer_id", "probability", "band", "decision", "model_name", "model_version", "reasons", "features"])
        .orderBy("run_id")
        .orderBy("customer_id")
        .execute();
      expect(moved.length).toBe(expected.length);
      const key = (r: Record<string, unknown>) => `${r.run_id}/${r.customer_id}`;
      const want = new Map(expected.map((r) => [key(r), r]));
      for (const r of moved) {
        const w = want.get(key(r)) as Record<string, unknown>;
        expect({ ...r, features: r.features ?? null }).toEqual({
          run_id: w.run_id,
          customer_id: w.customer_id,
          probability: w.probability,
          band: w.band,
          decision: w.decision,
          model_name: "churn",
          model_version: "3",
          reasons: w.reasons,
          features: null,
        });
      }
      // The compact table holds them, with its one secondary index; the old per-customer index is gone.
      expect(await countRows(store, "score_rows")).toBe(expected.length);
      // A new run gets the next key, and the view takes inserts (as the Spark JDBC writer sends them) and deletes.
      await store.db
        .insertInto("score_runs")
        .values({ ...run("daily-2026-11-04-churn-v3", "2026-11-04"), replaces: null, pruned_at: null })
        .execute();
      const keys = await sql<{ run_id: string; run_key: number }>`SELECT run_id, run_key FROM score_runs ORDER BY run_key`.execute(store.db);
      expect(keys.rows.map((r) => [r.run_id, Number(r.run_key)])).toEqual([
        ["daily-2026-11-01-churn-v3", 1],
        ["daily-2026-11-02-churn-v3", 2],
        ["daily-2026-11-03-churn-v3", 3],
        ["daily-2026-11-04-churn-v3", 4],
      ]);
      await store.db
        .insertInto("scores")
        .values({
          run_id: "daily-2026-11-04-churn-v3",
          customer_id: "x",
          probability: 0.25,
          band: "very high",
          decision: 1,
          model_name: "churn",
          model_version: "3",
          scored_at: "t",
        })
        .execute();
      const inserted = await store.db
        .selectFrom("scores")
        .select(["band", "probability", "scored_at"])
        .where("run_id", "=", "daily-2026-11-04-churn-v3")
        .execute();
      expect(inserted).toEqual([{ band: "very high", probability: 0.25, scored_at: run("", "").started_at }]);
      await store.db.deleteFrom("scores").where("run_id", "=", "daily-2026-11-04-churn-v3").execute();
      expect(await countRows(store, "scores")).toBe(expected.length);
    } finally {
      await store.close();
    }
  });

  it("025 (playbook offers) keeps every campaign member, with no offer, and takes members with one", async () => {
    const url = await target.fresh();
    const old = await storeUpTo(url, "019_run_replaces");
    const id = "daily-2026-11-01-churn-v3";
    await old
      .insertInto("score_runs")
      .values({ ...run(id, "2026-11-01"), replaces: null, pruned_at: null })
      .execute();
    const campaign = {
      name: "nov",
      run_id: id,
      as_of: "2026-11-01",
      model_name: "churn",
      model_version: "3",
      rule: "{}",
      ranking: "risk" as const,
      params: "{}",
      seed: 1,
      budget: null,
      control_share: 0.5,
      cooldown_days: 0,
      offer: "X",
      offer_cost: null,
      counts: "{}",
      treated: 1,
      control: 1,
      planned_at: "2026-11-01T07:00:00.000Z",
    };
    await old.insertInto("campaigns").values(campaign).execute();
    const member = (customer: string, arm: "treatment" | "control") => ({
      campaign: "nov",
      customer_id: customer,
      arm,
      rank: arm === "treatment" ? 1 : 2,
      probability: 0.7,
      band: "high",
      model_version: "3",
      value: null,
      expected_value: null,
      planned_at: "2026-11-01T07:00:00.000Z",
    });
    // Inserted without offer columns: they do not exist yet.
    await (old as unknown as Kysely<Record<string, Record<string, unknown>>>)
      .insertInto("campaign_members")
      .values([member("a", "treatment"), member("b", "control")])
      .execute();
    await old.destroy();

    const store = await openStore(url);
    try {
      const members = await store.db.selectFrom("campaign_members").selectAll().orderBy("customer_id").execute();
      expect(members.map((m) => ({ ...m, rank: Number(m.rank), probability: Number(m.probability) }))).toEqual([
        { ...member("a", "treatment"), offer: null, offer_reason: null },
        { ...member("b", "control"), offer: null, offer_reason: null },
      ]);
      await store.db
        .insertInto("campaign_members")
        .values({ ...member("c", "control"), offer: "ANNUAL20", offer_reason: "Contract" })
        .execute();
      expect(await store.db.selectFrom("campaign_members").select(["offer", "offer_reason"]).where("customer_id", "=", "c").executeTakeFirst()).toEqual({
        offer: "ANNUAL20",
        offer_reason: "Contract",
      });
    } finally {
      await store.close();
    }
  });
});
