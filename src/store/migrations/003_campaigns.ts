import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("campaigns")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("run_id", "text", (c) => c.notNull().references("score_runs.run_id"))
    .addColumn("as_of", "text", (c) => c.notNull())
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("ranking", "text", (c) => c.notNull())
    .addColumn("params", "text", (c) => c.notNull())
    .addColumn("seed", "bigint", (c) => c.notNull())
    .addColumn("budget", "bigint")
    .addColumn("control_share", "double precision", (c) => c.notNull())
    .addColumn("cooldown_days", "bigint", (c) => c.notNull())
    .addColumn("offer", "text")
    .addColumn("offer_cost", "double precision")
    .addColumn("counts", "text", (c) => c.notNull())
    .addColumn("treated", "bigint", (c) => c.notNull())
    .addColumn("control", "bigint", (c) => c.notNull())
    .addColumn("planned_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("campaign_members")
    .addColumn("campaign", "text", (c) => c.notNull().references("campaigns.name"))
    .addColumn("customer_id", "text", (c) => c.notNull())
    .addColumn("arm", "text", (c) => c.notNull())
    .addColumn("rank", "bigint", (c) => c.notNull())
    .addColumn("probability", "double precision", (c) => c.notNull())
    .addColumn("band", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("value", "double precision")
    .addColumn("expected_value", "double precision")
    .addColumn("planned_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("campaign_members_pk", ["campaign", "customer_id"])
    .execute();
  await db.schema.createIndex("campaign_members_customer").on("campaign_members").columns(["customer_id", "arm"]).execute();
  await db.schema
    .createTable("campaign_messages")
    .addColumn("campaign", "text", (c) => c.notNull().references("campaigns.name"))
    .addColumn("customer_id", "text", (c) => c.notNull())
    .addColumn("idempotency_key", "text", (c) => c.notNull().unique())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("attempts", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("lease_owner", "text")
    .addColumn("lease_expires_at", "text")
    .addColumn("target", "text")
    .addColumn("last_error", "text")
    .addColumn("response_status", "bigint")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("delivered_at", "text")
    .addPrimaryKeyConstraint("campaign_messages_pk", ["campaign", "customer_id"])
    .execute();
  await db.schema.createIndex("campaign_messages_state").on("campaign_messages").columns(["campaign", "state"]).execute();
  await db.schema
    .createTable("opt_outs")
    .addColumn("customer_id", "text", (c) => c.primaryKey())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("opted_out_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("outcomes")
    .addColumn("customer_id", "text", (c) => c.notNull())
    .addColumn("observed_at", "text", (c) => c.notNull())
    .addColumn("churned", "integer", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("ingested_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("outcomes_pk", ["customer_id", "observed_at"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("outcomes").execute();
  await db.schema.dropTable("opt_outs").execute();
  await db.schema.dropTable("campaign_messages").execute();
  await db.schema.dropTable("campaign_members").execute();
  await db.schema.dropTable("campaigns").execute();
}
