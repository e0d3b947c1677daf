import { z } from "zod";
import type { Store } from "./db.js";
import type { DatasetBuildsTable, RetrainDecisionsTable, SnapshotsTable } from "./schema.js";

/**
 * What point-in-time training sets are made from and what the retrain cycle decided (migration 017): the
 * snapshots the daily job kept, the complete score runs and the inputs they recorded, outcomes and campaign arms
 * as plain rows for the dataset builder (src/dataset/), dataset builds, and retrain decisions with a typed read
 * model for the CLI and the console.
 */

export type SnapshotRow = SnapshotsTable;
export type DatasetBuildRow = DatasetBuildsTable;
export type RetrainDecisionRow = RetrainDecisionsTable;

/** Record a kept snapshot; a date kept before keeps its first copy (the one its scores were made from). */
export async function keepSnapshotRecord(store: Store, row: SnapshotRow): Promise<boolean> {
  const r = await store.db
    .insertInto("snapshots")
    .values(row)
    .onConflict((oc) => oc.column("date").doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Forget a kept snapshot whose file is gone, so that the day can be kept again. */
export async function forgetSnapshot(store: Store, date: string): Promise<void> {
  await store.db.deleteFrom("snapshots").where("date", "=", date).execute();
}

export async function getSnapshot(store: Store, date: string): Promise<SnapshotRow | undefined> {
  const row = await store.db.selectFrom("snapshots").selectAll().where("date", "=", date).executeTakeFirst();
  return row === undefined ? undefined : { ...row, rows: Number(row.rows) };
}

export interface Window {
  from?: string | undefined;
  to?: string | undefined;
}

export async function keptSnapshots(store: Store, window: Window): Promise<SnapshotRow[]> {
  let q = store.db.selectFrom("snapshots").selectAll();
  if (window.from !== undefined) q = q.where("date", ">=", window.from);
  if (window.to !== undefined) q = q.where("date", "<=", window.to);
  const rows = await q.orderBy("date").execute();
  return rows.map((r) => ({ ...r, rows: Number(r.rows) }));
}

/** Complete score runs in the window with what they read, by date then run id (so the choice per date is stable). */
export async function completeRunInputs(store: Store, window: Window): Promise<{ run_id: string; as_of: string; source: string; input: string | null }[]> {
  let q = store.db.selectFrom("score_runs").select(["run_id", "as_of", "source", "input"]).where("status", "=", "complete");
  if (window.from !== undefined) q = q.where("as_of", ">=", window.from);
  if (window.to !== undefined) q = q.where("as_of", "<=", window.to);
  return q.orderBy("as_of").orderBy("run_id").execute();
}

export interface OutcomeFact {
  customer_id: string;
  observed_at: string;
  churned: number;
}

/** Outcomes observed on or before `through`, page by page in key order (the builder loads them into DuckDB). */
export async function* iterateOutcomes(store: Store, through: string, pageSize = 50_000): AsyncGenerator<OutcomeFact[]> {
  let after: { id: string; at: string } | null = null;
  for (;;) {
    let q = store.db.selectFrom("outcomes").select(["customer_id", "observed_at", "churned"]).where("observed_at", "<=", through);
    if (after !== null) {
      const a = after;
      q = q.where((eb) => eb.or([eb("customer_id", ">", a.id), eb.and([eb("customer_id", "=", a.id), eb("observed_at", ">", a.at)])]));
    }
    const page = await q.orderBy("customer_id").orderBy("observed_at").limit(pageSize).execute();
    if (page.length === 0) return;
    yield page.map((r) => ({ ...r, churned: Number(r.churned) }));
    const last = page[page.length - 1] as OutcomeFact;
    after = { id: last.customer_id, at: last.observed_at };
  }
}

/** The latest day an outcome was observed, on or before `asOf`; null when none was. */
export async function latestOutcomeDay(store: Store, asOf: string): Promise<string | null> {
  const row = await store.db
    .selectFrom("outcomes")
    .select((eb) => eb.fn.max("observed_at").as("day"))
    .where("observed_at", "<=", asOf)
    .executeTakeFirst();
  return row?.day ?? null;
}

export interface ArmFact {
  campaign: string;
  /** The score date the campaign was planned from: when its offers went out. */
  as_of: string;
  customer_id: string;
  arm: "treatment" | "control";
}

/** Campaign members of campaigns planned from `from` on (the builder keeps those inside a row's label window). */
export async function* iterateArms(store: Store, from: string | undefined, pageSize = 50_000): AsyncGenerator<ArmFact[]> {
  let offset = 0;
  for (;;) {
    let q = store.db
      .selectFrom("campaign_members as m")
      .innerJoin("campaigns as c", "c.name", "m.campaign")
      .select(["m.campaign", "c.as_of", "m.customer_id", "m.arm"]);
    if (from !== undefined) q = q.where("c.as_of", ">=", from);
    const page = await q.orderBy("m.campaign").orderBy("m.customer_id").limit(pageSize).offset(offset).execute();
    if (page.length === 0) return;
    yield page;
    offset += page.length;
  }
}

/** A build with the same fingerprint is the same rows: recorded once, with its latest output path. */
export async function saveDatasetBuild(store: Store, row: DatasetBuildRow): Promise<void> {
  await store.db
    .insertInto("dataset_builds")
    .values(row)
    .onConflict((oc) => oc.column("fingerprint").doUpdateSet({ built_at: row.built_at, out: row.out }))
    .execute();
}

export async function saveRetrainDecision(store: Store, row: RetrainDecisionRow): Promise<void> {
  await store.db.insertInto("retrain_decisions").values(row).execute();
}

/** The latest decision the gate made (not "not enough labels", not a failure): when the model was last judged. */
export async function lastJudged(store: Store, modelName: string): Promise<{ date: string; decided_at: string } | undefined> {
  return store.db
    .selectFrom("retrain_decisions")
    .select(["date", "decided_at"])
    .where("model_name", "=", modelName)
    .where("outcome", "in", ["refused", "promoted", "not_promoted_dry_run"])
    .orderBy("date", "desc")
    .orderBy("decided_at", "desc")
    .limit(1)
    .executeTakeFirst();
}

const countOrNull = z
  .union([z.number(), z.string(), z.bigint()])
  .nullable()
  .transform((v) => (v === null ? null : Number(v)));

export const retrainDecisionSchema = z.object({
  id: z.string(),
  date: z.string(),
  decided_at: z.string(),
  model_name: z.string(),
  trigger: z.string(),
  outcome: z.enum(["not_enough_labels", "refused", "promoted", "not_promoted_dry_run", "failed"]),
  reason: z.string(),
  dataset_fingerprint: z.string().nullable(),
  dataset_rows: countOrNull,
  dataset_positives: countOrNull,
  gate_decision_id: z.string().nullable(),
  champion_version: z.string().nullable(),
  challenger_version: z.string().nullable(),
});
export type RetrainDecision = z.infer<typeof retrainDecisionSchema>;

/** The retrain cycle's decisions, newest first: the read model behind `retrain --history` (and the console). */
export async function retrainHistory(store: Store, options: { modelName?: string; limit?: number } = {}): Promise<RetrainDecision[]> {
  let q = store.db.selectFrom("retrain_decisions").selectAll();
  if (options.modelName !== undefined) q = q.where("model_name", "=", options.modelName);
  const rows = await q
    .orderBy("decided_at", "desc")
    .orderBy("id")
    .limit(options.limit ?? 50)
    .execute();
  return rows.map((r) => retrainDecisionSchema.parse(r));
}
