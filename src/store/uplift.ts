import type { Store } from "./db.js";
import { churnAfter } from "./outcomes.js";
import type { CampaignUpliftMembersTable } from "./schema.js";

export type CampaignUpliftRow = CampaignUpliftMembersTable;

/** One campaign member as uplift training sees it: arm, risk at planning, delivery state, outcome in the horizon. */
export interface UpliftTrainingMember {
  customer_id: string;
  arm: "treatment" | "control";
  probability: number;
  /** The message's state for a treated member (pending, sending, delivered, dead); null for control. */
  delivery: string | null;
  /** 1 churned, 0 stayed (an outcome observed after the campaign's date, up to the horizon's end); null unknown. */
  churned: number | null;
}

/** Every member of a campaign with its delivery state and outcome observed in (asOf, horizonEnd]. */
export async function upliftTrainingMembers(store: Store, campaign: string, asOf: string, horizonEnd: string): Promise<UpliftTrainingMember[]> {
  const outcome = churnAfter(store, asOf, horizonEnd).as("o");
  const rows = await store.db
    .selectFrom("campaign_members as m")
    .leftJoin("campaign_messages as s", (j) => j.onRef("s.campaign", "=", "m.campaign").onRef("s.customer_id", "=", "m.customer_id"))
    .leftJoin(outcome, "o.customer_id", "m.customer_id")
    .select(["m.customer_id", "m.arm", "m.probability", "s.state", "o.churned"])
    .where("m.campaign", "=", campaign)
    .orderBy("m.customer_id")
    .execute();
  return rows.map((r) => ({
    customer_id: r.customer_id,
    arm: r.arm,
    probability: Number(r.probability),
    delivery: r.state ?? null,
    churned: r.churned === null || r.churned === undefined ? null : Number(r.churned),
  }));
}

/** The uplift rows of a campaign planned with `--rank-by uplift` (empty for other campaigns). */
export async function campaignUpliftMembers(store: Store, campaign: string): Promise<CampaignUpliftRow[]> {
  const rows = await store.db.selectFrom("campaign_uplift_members").selectAll().where("campaign", "=", campaign).execute();
  return rows.map((r) => ({ ...r, uplift: Number(r.uplift) }));
}

/** Per uplift member: its arm and outcome after the campaign's date (for the report's deciles). */
export async function upliftOutcomes(
  store: Store,
  campaign: string,
  asOf: string,
): Promise<
  {
    customer_id: string;
    arm: "treatment" | "control";
    uplift: number;
    selected_by: string;
    uplift_model_name: string;
    uplift_model_version: string;
    churned: number | null;
  }[]
> {
  const outcome = churnAfter(store, asOf).as("o");
  const rows = await store.db
    .selectFrom("campaign_uplift_members as u")
    .innerJoin("campaign_members as m", (j) => j.onRef("m.campaign", "=", "u.campaign").onRef("m.customer_id", "=", "u.customer_id"))
    .leftJoin(outcome, "o.customer_id", "u.customer_id")
    .select(["u.customer_id", "m.arm", "u.uplift", "u.selected_by", "u.uplift_model_name", "u.uplift_model_version", "o.churned"])
    .where("u.campaign", "=", campaign)
    .execute();
  return rows.map((r) => ({
    customer_id: r.customer_id,
    arm: r.arm,
    uplift: Number(r.uplift),
    selected_by: r.selected_by,
    uplift_model_name: r.uplift_model_name,
    uplift_model_version: r.uplift_model_version,
    churned: r.churned === null || r.churned === undefined ? null : Number(r.churned),
  }));
}
