import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("score_runs")
    .addColumn("run_id", "text", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("as_of", "text", (c) => c.notNull())
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("started_at", "text", (c) => c.notNull())
    .addColumn("finished_at", "text")
    .addColumn("rows_read", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("rows_scored", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("rows_quarantined", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("checkpoint_rows", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("duration_ms", "double precision")
    .addColumn("error", "text")
    .addColumn("lease_owner", "text")
    .addColumn("lease_expires_at", "text")
    .addUniqueConstraint("score_runs_natural_key", ["kind", "as_of", "model_name", "model_version"])
    .execute();
  await db.schema
    .createTable("scores")
    .addColumn("run_id", "text", (c) => c.notNull().references("score_runs.run_id"))
    .addColumn("customer_id", "text", (c) => c.notNull())
    .addColumn("probability", "double precision", (c) => c.notNull())
    .addColumn("band", "text", (c) => c.notNull())
    .addColumn("decision", "integer", (c) => c.notNull())
    .addColumn("model_name", "text", (c) => c.notNull())
    .addColumn("model_version", "text", (c) => c.notNull())
    .addColumn("scored_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("scores_pk", ["run_id", "customer_id"])
    .execute();
  await db.schema.createIndex("scores_customer").on("scores").column("customer_id").execute();
  await db.schema
    .createTable("quarantine")
    .addColumn("run_id", "text", (c) => c.notNull().references("score_runs.run_id"))
    .addColumn("row_number", "bigint", (c) => c.notNull())
    .addColumn("customer_id", "text")
    .addColumn("reason", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("quarantine_pk", ["run_id", "row_number"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("quarantine").execute();
  await db.schema.dropTable("scores").execute();
  await db.schema.dropTable("score_runs").execute();
}
