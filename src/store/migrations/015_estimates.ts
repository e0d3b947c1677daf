import type { Kysely } from "kysely";

/** Performance estimated from a run's probabilities before labels arrive (src/monitoring/estimate.ts). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("performance_estimates")
    .addColumn("run_id", "text", (c) => c.primaryKey().references("score_runs.run_id"))
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("as_of", "text", (c) => c.notNull())
    .addColumn("rows", "bigint", (c) => c.notNull())
    .addColumn("trusted", "integer", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("recall", "double precision")
    .addColumn("precision", "double precision")
    .addColumn("roc_auc", "double precision")
    .addColumn("expected_churners", "double precision", (c) => c.notNull())
    .addColumn("report", "text", (c) => c.notNull())
    .addColumn("computed_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("performance_estimates_version").on("performance_estimates").columns(["model_name", "model_version", "as_of"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("performance_estimates").execute();
}
