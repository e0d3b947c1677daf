import type { Kysely } from "kysely";

/**
 * What a run read and what its input looked like, so a resume or a re-run can tell the same input from another
 * (issue 14 item 1, issue 15 item 3), and the drift profile gathered while scoring (issue 16 item 3).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite adds columns one at a time. Null on runs stored before this migration.
  await db.schema.alterTable("score_runs").addColumn("input", "text").execute();
  await db.schema.alterTable("score_runs").addColumn("input_fingerprint", "text").execute();
  await db.schema
    .createTable("run_profiles")
    .addColumn("run_id", "text", (c) => c.primaryKey().references("score_runs.run_id"))
    .addColumn("profile", "text", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("run_profiles").execute();
  await db.schema.alterTable("score_runs").dropColumn("input_fingerprint").execute();
  await db.schema.alterTable("score_runs").dropColumn("input").execute();
}
