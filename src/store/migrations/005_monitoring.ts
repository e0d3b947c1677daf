import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("drift_reports")
    .addColumn("run_id", "text", (c) => c.primaryKey().references("score_runs.run_id"))
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("as_of", "text", (c) => c.notNull())
    .addColumn("severity", "text", (c) => c.notNull())
    .addColumn("max_psi", "double precision")
    .addColumn("rows_profiled", "bigint", (c) => c.notNull())
    .addColumn("report", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("performance_reports")
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("month", "text", (c) => c.notNull())
    .addColumn("labels", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("labelled", "bigint", (c) => c.notNull())
    .addColumn("recall", "double precision")
    .addColumn("precision", "double precision")
    .addColumn("roc_auc", "double precision")
    .addColumn("report", "text", (c) => c.notNull())
    .addColumn("computed_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("performance_reports_pk", ["model_name", "model_version", "month", "labels"])
    .execute();
  await db.schema
    .createTable("alerts")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("severity", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("day", "text", (c) => c.notNull())
    .addColumn("message", "text", (c) => c.notNull())
    .addColumn("details", "text", (c) => c.notNull())
    .addColumn("model_name", "text")
    .addColumn("model_version", "text")
    .addColumn("run_id", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("delivery_attempts", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("delivered_at", "text")
    .addColumn("delivery_error", "text")
    .execute();
  await db.schema.createIndex("alerts_day").on("alerts").columns(["day", "rule"]).execute();
  await db.schema
    .createTable("gate_decisions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("decided_at", "text", (c) => c.notNull())
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("champion_version", "text", (c) => c.notNull())
    .addColumn("challenger_version", "text", (c) => c.notNull())
    .addColumn("decision", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("holdout", "text", (c) => c.notNull())
    .addColumn("holdout_rows", "bigint", (c) => c.notNull())
    .addColumn("champion_metrics", "text", (c) => c.notNull())
    .addColumn("challenger_metrics", "text", (c) => c.notNull())
    .addColumn("promoted", "integer", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("gate_decisions_time").on("gate_decisions").columns(["model_name", "decided_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("gate_decisions").execute();
  await db.schema.dropTable("alerts").execute();
  await db.schema.dropTable("performance_reports").execute();
  await db.schema.dropTable("drift_reports").execute();
}
