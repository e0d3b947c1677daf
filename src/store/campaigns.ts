import type { Selectable } from "kysely";
import { ChurnopsError } from "../errors.js";
import type { Store } from "./db.js";
import { scoresOfRun } from "./runs.js";
import type { CampaignMembersTable, CampaignMessagesTable, CampaignsTable, CampaignUpliftMembersTable } from "./schema.js";

export type CampaignRow = CampaignsTable;
export type CampaignMemberRow = Selectable<CampaignMembersTable>;

/** Rows per INSERT: under both SQLite's and PostgreSQL's bound-parameter limits for these widths. */
const INSERT_ROWS = 500;

export interface ScoredCustomer {
  customer_id: string;
  probability: number;
  band: string;
  model_version: string;
}

/** Who is at risk enough for an offer. `decision` = the model's own operating threshold. */
export type RiskRule = { kind: "band"; band: string } | { kind: "threshold"; threshold: number } | { kind: "top_pct"; pct: number } | { kind: "decision" };

/**
 * Bands of a run from the riskiest down, with the lowest probability seen in each. Bands are probability
 * thresholds, so "band X or higher" is exactly "probability ≥ the lowest probability seen in X".
 */
export async function runBands(store: Store, runId: string): Promise<{ band: string; min: number; n: number }[]> {
  const rows = await store.db
    .selectFrom("scores")
    .select(["band", (eb) => eb.fn.min<number>("probability").as("min"), (eb) => eb.fn.countAll<number>().as("n")])
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .groupBy("band")
    .execute();
  return rows.map((r) => ({ band: r.band, min: Number(r.min), n: Number(r.n) })).sort((a, b) => b.min - a.min);
}

/** Scored customers of a run that meet the risk rule. */
export async function scoredCustomers(store: Store, runId: string, filter: RiskRule): Promise<ScoredCustomer[]> {
  let q = store.db.selectFrom("scores").select(["customer_id", "probability", "band", "model_version"]).where("run_id", "=", runId).where(scoresOfRun(runId));
  switch (filter.kind) {
    case "band": {
      const bands = await runBands(store, runId);
      const band = bands.find((b) => b.band === filter.band);
      if (band === undefined) return [];
      q = q.where("probability", ">=", band.min);
      break;
    }
    case "threshold":
      q = q.where("probability", ">=", filter.threshold);
      break;
    case "decision":
      q = q.where("decision", "=", 1);
      break;
    case "top_pct": {
      const total = await store.db
        .selectFrom("scores")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("run_id", "=", runId)
        .where(scoresOfRun(runId))
        .executeTakeFirstOrThrow();
      q = q
        .orderBy("probability", "desc")
        .orderBy("customer_id")
        .limit(Math.ceil((Number(total.n) * filter.pct) / 100));
      break;
    }
  }
  const rows = await q.execute();
  return rows.map((r) => ({ ...r, probability: Number(r.probability) }));
}

/** Customers in the treatment arm of any other campaign scored after `after` (YYYY-MM-DD): still cooling down. */
export async function treatedAfter(store: Store, after: string, exceptCampaign: string): Promise<Set<string>> {
  const rows = await store.db
    .selectFrom("campaign_members as m")
    .innerJoin("campaigns as c", "c.name", "m.campaign")
    .select("m.customer_id")
    .distinct()
    .where("m.arm", "=", "treatment")
    .where("c.as_of", ">", after)
    .where("c.name", "<>", exceptCampaign)
    .execute();
  return new Set(rows.map((r) => r.customer_id));
}

export async function getCampaign(store: Store, name: string): Promise<CampaignRow | undefined> {
  const row = await store.db.selectFrom("campaigns").selectAll().where("name", "=", name).executeTakeFirst();
  return row === undefined ? undefined : normalizeCampaign(row);
}

export async function requireCampaign(store: Store, name: string): Promise<CampaignRow> {
  const row = await getCampaign(store, name);
  if (row === undefined) throw new ChurnopsError("not_found", `no campaign named ${name} (see \`churnops campaign list\`)`, { field: "name" });
  return row;
}

export async function listCampaigns(store: Store, limit = 50): Promise<CampaignRow[]> {
  const rows = await store.db.selectFrom("campaigns").selectAll().orderBy("planned_at", "desc").limit(limit).execute();
  return rows.map(normalizeCampaign);
}

function normalizeCampaign(row: CampaignRow): CampaignRow {
  return {
    ...row,
    seed: Number(row.seed),
    budget: row.budget === null ? null : Number(row.budget),
    cooldown_days: Number(row.cooldown_days),
    treated: Number(row.treated),
    control: Number(row.control),
  };
}

export type NewMessage = Pick<CampaignMessagesTable, "campaign" | "customer_id" | "idempotency_key" | "payload" | "created_at">;

/**
 * Record a plan: the campaign, its members and one outbox message per treated member, in one transaction.
 * Returns false (and writes nothing) when a campaign of that name already exists, including one that a
 * concurrent planner committed first.
 */
export async function insertPlan(
  store: Store,
  campaign: CampaignRow,
  members: CampaignMemberRow[],
  messages: NewMessage[],
  uplift: readonly CampaignUpliftMembersTable[] = [],
): Promise<boolean> {
  try {
    return await store.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("campaigns")
        .values(campaign)
        .onConflict((oc) => oc.column("name").doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      for (let i = 0; i < members.length; i += INSERT_ROWS) {
        await trx
          .insertInto("campaign_members")
          .values(members.slice(i, i + INSERT_ROWS))
          .execute();
      }
      for (let i = 0; i < uplift.length; i += INSERT_ROWS) {
        await trx
          .insertInto("campaign_uplift_members")
          .values(uplift.slice(i, i + INSERT_ROWS))
          .execute();
      }
      for (let i = 0; i < messages.length; i += INSERT_ROWS) {
        await trx
          .insertInto("campaign_messages")
          .values(messages.slice(i, i + INSERT_ROWS).map((m) => ({ ...m, state: "pending" as const, attempts: 0 })))
          .execute();
      }
      return true;
    });
  } catch (err) {
    if ((await getCampaign(store, campaign.name)) !== undefined) return false;
    throw err;
  }
}

export async function campaignMembers(store: Store, name: string, arm?: "treatment" | "control"): Promise<CampaignMemberRow[]> {
  let q = store.db.selectFrom("campaign_members").selectAll().where("campaign", "=", name);
  if (arm !== undefined) q = q.where("arm", "=", arm);
  const rows = await q.orderBy("rank").execute();
  return rows.map((r) => ({
    ...r,
    rank: Number(r.rank),
    probability: Number(r.probability),
    value: r.value === null ? null : Number(r.value),
    expected_value: r.expected_value === null ? null : Number(r.expected_value),
  }));
}

export interface ArmCounts {
  treated: number;
  control: number;
}

export async function armCounts(store: Store, name: string): Promise<ArmCounts> {
  const rows = await store.db
    .selectFrom("campaign_members")
    .select(["arm", (eb) => eb.fn.countAll<number>().as("n")])
    .where("campaign", "=", name)
    .groupBy("arm")
    .execute();
  const n = (arm: string): number => Number(rows.find((r) => r.arm === arm)?.n ?? 0);
  return { treated: n("treatment"), control: n("control") };
}
