import type { Kysely } from "kysely";

/** The console's people: users with a role, their sign-in sessions, and the audit log of what they did. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("console_users")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("password_hash", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("console_sessions")
    // Only a hash of the token is kept: a copy of the store does not let anyone sign in.
    .addColumn("token_hash", "text", (c) => c.primaryKey())
    .addColumn("user_name", "text", (c) => c.notNull().references("console_users.name").onDelete("cascade"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("console_sessions_user").on("console_sessions").column("user_name").execute();
  await db.schema
    .createTable("console_audit")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("at", "text", (c) => c.notNull())
    // No foreign key: the record of what a user did outlives the user.
    .addColumn("user_name", "text", (c) => c.notNull())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("details", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("console_audit_at").on("console_audit").columns(["at", "id"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("console_audit").execute();
  await db.schema.dropTable("console_sessions").execute();
  await db.schema.dropTable("console_users").execute();
}
