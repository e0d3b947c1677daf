import type { Kysely } from "kysely";

/**
 * Point-in-time training sets (issue 24): the snapshots the daily job keeps (a copy of the day's input, so a
 * training set can still be built when the original file has moved or been overwritten), every dataset build with
 * its fingerprint, and every decision of the retrain cycle (not enough labels, refused, promoted, failed).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("snapshots")
    .addColumn("date", "text", (c) => c.primaryKey())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("path", "text", (c) => c.notNull())
    .addColumn("rows", "bigint", (c) => c.notNull())
    .addColumn("columns", "text", (c) => c.notNull())
    .addColumn("kept_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("dataset_builds")
    .addColumn("fingerprint", "text", (c) => c.primaryKey())
    .addColumn("built_at", "text", (c) => c.notNull())
    .addColumn("horizon_days", "integer", (c) => c.notNull())
    .addColumn("from_date", "text")
    .addColumn("to_date", "text")
    .addColumn("labels_through", "text")
    .addColumn("rows", "bigint", (c) => c.notNull())
    .addColumn("positives", "bigint", (c) => c.notNull())
    .addColumn("summary", "text", (c) => c.notNull())
    .addColumn("out", "text")
    .execute();
  await db.schema
    .createTable("retrain_decisions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("date", "text", (c) => c.notNull())
    .addColumn("decided_at", "text", (c) => c.notNull())
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("dataset_fingerprint", "text")
    .addColumn("dataset_rows", "bigint")
    .addColumn("dataset_positives", "bigint")
    .addColumn("gate_decision_id", "text")
    .addColumn("champion_version", "text")
    .addColumn("challenger_version", "text")
    .execute();
  await db.schema.createIndex("retrain_decisions_time").on("retrain_decisions").columns(["model_name", "decided_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("retrain_decisions").execute();
  await db.schema.dropTable("dataset_builds").execute();
  await db.schema.dropTable("snapshots").execute();
}
