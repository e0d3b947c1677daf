import { randomUUID } from "node:crypto";
import { z } from "zod";
import { consoleDb } from "./console-tables.js";
import type { Store } from "./db.js";

export const auditEntrySchema = z.object({
  id: z.string(),
  at: z.string(),
  user_name: z.string(),
  role: z.string(),
  action: z.string(),
  subject: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

export interface AuditAction {
  user: { name: string; role: string };
  action: string;
  subject: string;
  details?: Record<string, unknown>;
}

export async function recordAudit(store: Store, entry: AuditAction, now: Date = new Date()): Promise<void> {
  await consoleDb(store)
    .insertInto("console_audit")
    .values({
      id: randomUUID(),
      at: now.toISOString(),
      user_name: entry.user.name,
      role: entry.user.role,
      action: entry.action,
      subject: entry.subject,
      details: JSON.stringify(entry.details ?? {}),
    })
    .execute();
}

/** Newest first. */
export async function listAudit(store: Store, limit = 200): Promise<AuditEntry[]> {
  const rows = await consoleDb(store).selectFrom("console_audit").selectAll().orderBy("at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.map((r) => auditEntrySchema.parse({ ...r, details: JSON.parse(r.details) as unknown }));
}
