import { sql } from "kysely";
import type { Store } from "./db.js";
import { scoresOfRun } from "./runs.js";
import type { OptOutsTable, OutcomesTable } from "./schema.js";

export type OutcomeRow = OutcomesTable;
export type OptOutRow = OptOutsTable;

const INSERT_ROWS = 1000;

/** Record outcomes; the same customer and day again replaces the earlier observation (so ingesting twice changes nothing). */
export async function upsertOutcomes(store: Store, rows: readonly OutcomeRow[]): Promise<void> {
  if (rows.length === 0) return;
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += INSERT_ROWS) {
      await trx
        .insertInto("outcomes")
        .values(rows.slice(i, i + INSERT_ROWS))
        .onConflict((oc) =>
          oc.columns(["customer_id", "observed_at"]).doUpdateSet((eb) => ({
            churned: eb.ref("excluded.churned"),
            source: eb.ref("excluded.source"),
            ingested_at: eb.ref("excluded.ingested_at"),
          })),
        )
        .execute();
    }
  });
}

/** Record opt-outs; a customer who opted out before keeps the first date. */
export async function addOptOuts(store: Store, rows: readonly OptOutRow[]): Promise<number> {
  let added = 0;
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += INSERT_ROWS) {
      const r = await trx
        .insertInto("opt_outs")
        .values(rows.slice(i, i + INSERT_ROWS))
        .onConflict((oc) => oc.column("customer_id").doNothing())
        .executeTakeFirst();
      added += Number(r.numInsertedOrUpdatedRows ?? 0n);
    }
  });
  return added;
}

/** Those of `ids` that run `runId` did not score. */
export async function unscoredIds(store: Store, runId: string, ids: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i += INSERT_ROWS) {
    const rows = await store.db
      .selectFrom("scores")
      .select("customer_id")
      .where("run_id", "=", runId)
      .where(scoresOfRun(runId))
      .where("customer_id", "in", ids.slice(i, i + INSERT_ROWS))
      .execute();
    for (const r of rows) seen.add(r.customer_id);
  }
  return ids.filter((id) => !seen.has(id));
}

export async function optedOut(store: Store): Promise<Set<string>> {
  const rows = await store.db.selectFrom("opt_outs").select("customer_id").execute();
  return new Set(rows.map((r) => r.customer_id));
}

/** Customers known to have churned on or before `asOf` (YYYY-MM-DD). */
export async function churnedBy(store: Store, asOf: string): Promise<Set<string>> {
  const rows = await store.db.selectFrom("outcomes").select("customer_id").distinct().where("churned", "=", 1).where("observed_at", "<=", asOf).execute();
  return new Set(rows.map((r) => r.customer_id));
}

/**
 * One row per customer with an outcome observed after `after` (and up to `upTo`, when given): `churned` is 1 if
 * any of those observations says the customer churned. A subquery to join scores or members against.
 */
export function churnAfter(store: Store, after: string, upTo?: string) {
  let q = store.db
    .selectFrom("outcomes")
    .select(["customer_id", (eb) => eb.fn.max("churned").as("churned")])
    .where("observed_at", ">", after);
  if (upTo !== undefined) q = q.where("observed_at", "<=", upTo);
  return q.groupBy("customer_id");
}

export interface ArmOutcome {
  arm: "treatment" | "control";
  members: number;
  /** Members with at least one outcome observed after the campaign's date. */
  observed: number;
  churned: number;
  /** Sum of customer values over observed members (null when the campaign had no values). */
  observedValue: number | null;
}

/** An arm with no member (or none of that offer). */
export function noOutcome(arm: ArmOutcome["arm"]): ArmOutcome {
  return { arm, members: 0, observed: 0, churned: 0, observedValue: null };
}

/**
 * Per arm (and per playbook offer with `byOffer`, migration 025's campaign_members.offer): how many members have an
 * outcome observed after the campaign's score date, and how many of them churned (a customer counts as churned if
 * any such observation says so). One entry per group that has members; `offer` is null without `byOffer`.
 */
export async function armOutcomeGroups(
  store: Store,
  campaign: string,
  asOf: string,
  options: { byOffer?: boolean } = {},
): Promise<{ offer: string | null; outcome: ArmOutcome }[]> {
  const latest = churnAfter(store, asOf).as("o");
  const rows = await store.db
    .selectFrom("campaign_members as m")
    .leftJoin(latest, "o.customer_id", "m.customer_id")
    .select([
      "m.arm",
      (eb) => eb.fn.countAll<number>().as("members"),
      (eb) => eb.fn.count<number>("o.customer_id").as("observed"),
      sql<number>`coalesce(sum(o.churned), 0)`.as("churned"),
      sql<number | null>`sum(case when o.customer_id is not null then m.value end)`.as("observed_value"),
    ])
    .where("m.campaign", "=", campaign)
    .groupBy("m.arm")
    .$if(options.byOffer === true, (q) => q.select("m.offer").groupBy("m.offer"))
    .execute();
  return rows.map((r) => ({
    offer: r.offer ?? null,
    outcome: {
      arm: r.arm,
      members: Number(r.members),
      observed: Number(r.observed),
      churned: Number(r.churned),
      observedValue: r.observed_value === null || r.observed_value === undefined ? null : Number(r.observed_value),
    },
  }));
}

/** armOutcomeGroups over the whole campaign: the treatment arm, then the control arm. */
export async function armOutcomes(store: Store, campaign: string, asOf: string): Promise<ArmOutcome[]> {
  const groups = await armOutcomeGroups(store, campaign, asOf);
  return (["treatment", "control"] as const).map((arm) => groups.find((g) => g.outcome.arm === arm)?.outcome ?? noOutcome(arm));
}
