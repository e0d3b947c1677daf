import type { Kysely } from "kysely";

/**
 * The top reasons stored with each score (`churnops score --reasons N`): a JSON list of
 * {feature, label, value, contribution, text}, null for scores made without reasons (docs/store.md).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("scores").addColumn("reasons", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("scores").dropColumn("reasons").execute();
}
