import type { Kysely } from "kysely";

/**
 * The offer playbook (docs/campaigns.md, "Offers by reason"): each campaign member's offer and the reason feature
 * that chose it, for treated and control members alike, so `campaign report` can compare the arms within each
 * offer. Both are null for members of campaigns planned without a playbook (and for members no rule matched:
 * then `offer` is the default offer, if any, and `offer_reason` null).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("campaign_members").addColumn("offer", "text").execute();
  await db.schema.alterTable("campaign_members").addColumn("offer_reason", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("campaign_members").dropColumn("offer_reason").execute();
  await db.schema.alterTable("campaign_members").dropColumn("offer").execute();
}
