import type { Kysely } from "kysely";

/**
 * The console's risk list pages a run's scores by probability (then id) with keyset pagination; without this
 * index each page of a million-row run would sort the whole run.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex("scores_run_probability").on("scores").columns(["run_id", "probability", "customer_id"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("scores_run_probability").execute();
}
