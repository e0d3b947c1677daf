import type { Kysely } from "kysely";

/**
 * Uplift targeting (issue 19): per member of a campaign planned with `--rank-by uplift`, the predicted uplift,
 * the uplift model version that predicted it, and how the member was chosen (`ranking`: by expected net value;
 * `exploration`: at random among the eligible, so that later training data covers everyone).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("campaign_uplift_members")
    .addColumn("campaign", "text", (c) => c.notNull().references("campaigns.name"))
    .addColumn("customer_id", "text", (c) => c.notNull())
    .addColumn("uplift", "double precision", (c) => c.notNull())
    .addColumn("uplift_model_name", "text", (c) => c.notNull())
    .addColumn("uplift_model_version", "text", (c) => c.notNull())
    .addColumn("selected_by", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("campaign_uplift_members_pk", ["campaign", "customer_id"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("campaign_uplift_members").execute();
}
