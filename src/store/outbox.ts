import type { Expression, ExpressionBuilder, SqlBool } from "kysely";
import type { Store } from "./db.js";
import type { CampaignMessagesTable, Database } from "./schema.js";

export type MessageRow = CampaignMessagesTable;
export type MessageState = MessageRow["state"];
export const MESSAGE_STATES: readonly MessageState[] = ["pending", "sending", "delivered", "dead"];

function normalize(row: MessageRow): MessageRow {
  return {
    ...row,
    attempts: Number(row.attempts),
    response_status: row.response_status === null ? null : Number(row.response_status),
  };
}

/**
 * Pending, or held by a sender whose lease has run out. Messages caught mid-export to a file are not: the file
 * may already hold them, so only an export to that same file may finish them (see `fileTargetsInFlight`).
 */
function claimable(now: string) {
  return (eb: ExpressionBuilder<Database, "campaign_messages">): Expression<SqlBool> =>
    eb.or([eb("state", "=", "pending"), eb.and([eb("state", "=", "sending"), eb("lease_expires_at", "<", now), eb("target", "not like", "file:%")])]);
}

/**
 * Lease up to `limit` claimable messages to `owner` until `leaseUntil`. One UPDATE whose WHERE re-checks the
 * state, so two senders never hold the same message: on PostgreSQL the second waits for the first's row lock
 * and then sees the row no longer claimable; SQLite runs one writer at a time.
 */
export async function claimMessages(
  store: Store,
  campaign: string,
  owner: string,
  target: string,
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<MessageRow[]> {
  const nowIso = now.toISOString();
  const ids = store.db
    .selectFrom("campaign_messages")
    .select("customer_id")
    .where("campaign", "=", campaign)
    .where(claimable(nowIso))
    .orderBy("customer_id")
    .limit(limit);
  const rows = await store.db
    .updateTable("campaign_messages")
    .set({ state: "sending", lease_owner: owner, lease_expires_at: leaseUntil.toISOString(), target })
    .where("campaign", "=", campaign)
    .where("customer_id", "in", ids)
    .where(claimable(nowIso))
    .returningAll()
    .execute();
  return rows.map(normalize).sort((a, b) => (a.customer_id < b.customer_id ? -1 : 1));
}

/** Extend a lease this owner still holds; false when it was lost (expired and taken by another sender). */
export async function renewLease(store: Store, campaign: string, customerId: string, owner: string, leaseUntil: Date): Promise<boolean> {
  const r = await store.db
    .updateTable("campaign_messages")
    .set({ lease_expires_at: leaseUntil.toISOString() })
    .where("campaign", "=", campaign)
    .where("customer_id", "=", customerId)
    .where("state", "=", "sending")
    .where("lease_owner", "=", owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The receiver accepted the message: record it in its own transaction, whoever holds the lease now. */
export async function markDelivered(store: Store, campaign: string, customerId: string, status: number, at: Date): Promise<void> {
  await store.db
    .updateTable("campaign_messages")
    .set((eb) => ({
      state: "delivered",
      delivered_at: at.toISOString(),
      response_status: status,
      attempts: eb("attempts", "+", 1),
      lease_owner: null,
      lease_expires_at: null,
      last_error: null,
    }))
    .where("campaign", "=", campaign)
    .where("customer_id", "=", customerId)
    .where("state", "<>", "delivered")
    .execute();
}

/** A failed attempt: count it and keep the error; `dead` moves the message to the dead letters. */
export async function recordFailure(
  store: Store,
  campaign: string,
  customerId: string,
  owner: string,
  failure: { error: string; status: number | null; dead: boolean },
): Promise<void> {
  await store.db
    .updateTable("campaign_messages")
    .set((eb) => ({
      attempts: eb("attempts", "+", 1),
      last_error: failure.error.slice(0, 2000),
      response_status: failure.status,
      ...(failure.dead ? { state: "dead" as const, lease_owner: null, lease_expires_at: null } : {}),
    }))
    .where("campaign", "=", campaign)
    .where("customer_id", "=", customerId)
    .where("state", "=", "sending")
    .where("lease_owner", "=", owner)
    .execute();
}

/** Owners holding leases on a campaign's messages right now. */
export async function leaseOwners(store: Store, campaign: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .select("lease_owner")
    .distinct()
    .where("campaign", "=", campaign)
    .where("state", "=", "sending")
    .execute();
  return rows.map((r) => r.lease_owner).filter((o): o is string => o !== null);
}

/** Give back every (non-file) lease of an owner known to be gone, so its messages can be sent again at once. */
export async function releaseLeases(store: Store, campaign: string, owner: string): Promise<number> {
  const r = await store.db
    .updateTable("campaign_messages")
    .set({ state: "pending", lease_owner: null, lease_expires_at: null })
    .where("campaign", "=", campaign)
    .where("state", "=", "sending")
    .where("lease_owner", "=", owner)
    .where("target", "not like", "file:%")
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** File exports with messages still marked in flight: each with its holders and the latest lease expiry. */
export async function fileTargetsInFlight(store: Store, campaign: string): Promise<{ target: string; owners: string[]; leaseExpiresAt: string }[]> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .select(["target", "lease_owner", (eb) => eb.fn.max("lease_expires_at").as("until")])
    .where("campaign", "=", campaign)
    .where("state", "=", "sending")
    .where("target", "like", "file:%")
    .groupBy(["target", "lease_owner"])
    .execute();
  const byTarget = new Map<string, { target: string; owners: string[]; leaseExpiresAt: string }>();
  for (const r of rows) {
    if (r.target === null) continue;
    const entry = byTarget.get(r.target) ?? { target: r.target, owners: [], leaseExpiresAt: "" };
    if (r.lease_owner !== null) entry.owners.push(r.lease_owner);
    if (r.until !== null && String(r.until) > entry.leaseExpiresAt) entry.leaseExpiresAt = String(r.until);
    byTarget.set(r.target, entry);
  }
  return [...byTarget.values()];
}

/**
 * Assign every pending message (and any left mid-export to the same file by a crashed run) to a file target.
 * The file then always holds exactly the messages assigned to it, each once.
 */
export async function assignToFile(store: Store, campaign: string, target: string, owner: string, leaseUntil: Date): Promise<number> {
  const r = await store.db
    .updateTable("campaign_messages")
    .set({ state: "sending", target, lease_owner: owner, lease_expires_at: leaseUntil.toISOString() })
    .where("campaign", "=", campaign)
    .where((eb) => eb.or([eb("state", "=", "pending"), eb.and([eb("state", "=", "sending"), eb("target", "=", target)])]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Messages a file target holds (being exported or already delivered to it), in customer order. */
export async function* fileMessages(store: Store, campaign: string, target: string, pageSize = 10_000): AsyncGenerator<MessageRow[]> {
  let after: string | null = null;
  for (;;) {
    let q = store.db
      .selectFrom("campaign_messages")
      .selectAll()
      .where("campaign", "=", campaign)
      .where("target", "=", target)
      .where("state", "in", ["sending", "delivered"]);
    if (after !== null) q = q.where("customer_id", ">", after);
    const page = await q.orderBy("customer_id").limit(pageSize).execute();
    if (page.length === 0) return;
    yield page.map(normalize);
    after = page[page.length - 1]?.customer_id ?? null;
  }
}

/** The file is in place: everything being exported to it is delivered, in one transaction. */
export async function markFileDelivered(store: Store, campaign: string, target: string, at: Date): Promise<number> {
  const r = await store.db
    .updateTable("campaign_messages")
    .set((eb) => ({ state: "delivered", delivered_at: at.toISOString(), attempts: eb("attempts", "+", 1), lease_owner: null, lease_expires_at: null }))
    .where("campaign", "=", campaign)
    .where("target", "=", target)
    .where("state", "=", "sending")
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function messageStateCounts(store: Store, campaign: string): Promise<Record<MessageState, number>> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .select(["state", (eb) => eb.fn.countAll<number>().as("n")])
    .where("campaign", "=", campaign)
    .groupBy("state")
    .execute();
  const counts = Object.fromEntries(MESSAGE_STATES.map((s) => [s, 0])) as Record<MessageState, number>;
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

export async function deadLetters(store: Store, campaign: string, limit = 20): Promise<MessageRow[]> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .selectAll()
    .where("campaign", "=", campaign)
    .where("state", "=", "dead")
    .orderBy("customer_id")
    .limit(limit)
    .execute();
  return rows.map(normalize);
}

/** A campaign's dead letters grouped by their last error, the most frequent first. */
export async function deadLetterErrors(store: Store, campaign: string): Promise<{ error: string; messages: number }[]> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .select(["last_error", (eb) => eb.fn.countAll<number>().as("n")])
    .where("campaign", "=", campaign)
    .where("state", "=", "dead")
    .groupBy("last_error")
    .execute();
  return rows
    .map((r) => ({ error: r.last_error ?? "no error recorded", messages: Number(r.n) }))
    .sort((a, b) => b.messages - a.messages || a.error.localeCompare(b.error));
}

/** Put dead letters back in the queue (after the receiver was fixed), with a fresh attempt budget. */
export async function retryDead(store: Store, campaign: string): Promise<number> {
  const r = await store.db
    .updateTable("campaign_messages")
    .set({ state: "pending", attempts: 0 })
    .where("campaign", "=", campaign)
    .where("state", "=", "dead")
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}
