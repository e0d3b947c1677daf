import type { Store } from "./db.js";
import type { DailyRunsTable } from "./schema.js";

export type DailyRunRow = DailyRunsTable;

export type LockResult = { acquired: true } | { acquired: false; owner: string; expiresAt: string };

/**
 * Take the named lock for `owner` until `until`. A row per lock, so it works the same on SQLite and PostgreSQL:
 * insert if absent; otherwise take it over only if it expired or its holder is gone, with a compare-and-set on
 * the old holder so that two contenders cannot both win.
 */
export async function acquireLock(
  store: Store,
  name: string,
  owner: string,
  now: Date,
  until: Date,
  holderIsGone: (owner: string) => boolean,
): Promise<LockResult> {
  const inserted = await store.db
    .insertInto("job_locks")
    .values({ name, owner, acquired_at: now.toISOString(), expires_at: until.toISOString() })
    .onConflict((oc) => oc.column("name").doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { acquired: true };
  const held = await store.db.selectFrom("job_locks").selectAll().where("name", "=", name).executeTakeFirst();
  if (held === undefined) return acquireLock(store, name, owner, now, until, holderIsGone);
  if (held.owner !== owner && held.expires_at >= now.toISOString() && !holderIsGone(held.owner))
    return { acquired: false, owner: held.owner, expiresAt: held.expires_at };
  const taken = await store.db
    .updateTable("job_locks")
    .set({ owner, acquired_at: now.toISOString(), expires_at: until.toISOString() })
    .where("name", "=", name)
    .where("owner", "=", held.owner)
    .where("expires_at", "=", held.expires_at)
    .executeTakeFirst();
  if (Number(taken.numUpdatedRows) === 1) return { acquired: true };
  const winner = await store.db.selectFrom("job_locks").selectAll().where("name", "=", name).executeTakeFirst();
  return { acquired: false, owner: winner?.owner ?? "?", expiresAt: winner?.expires_at ?? "?" };
}

/** Extend a lock this owner holds; false when it no longer does. */
export async function renewLock(store: Store, name: string, owner: string, until: Date): Promise<boolean> {
  const r = await store.db
    .updateTable("job_locks")
    .set({ expires_at: until.toISOString() })
    .where("name", "=", name)
    .where("owner", "=", owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function releaseLock(store: Store, name: string, owner: string): Promise<void> {
  await store.db.deleteFrom("job_locks").where("name", "=", name).where("owner", "=", owner).execute();
}

/** Record that the daily job for `date` started (again): one row per date, its attempts counted. */
export async function startDailyRun(store: Store, date: string, kind: "daily" | "monthly", now: Date): Promise<DailyRunRow> {
  await store.db
    .insertInto("daily_runs")
    .values({ date, status: "running", kind, attempts: 0, started_at: now.toISOString(), finished_at: null, summary: null, error: null })
    .onConflict((oc) => oc.column("date").doNothing())
    .execute();
  await store.db
    .updateTable("daily_runs")
    .set((eb) => ({ status: "running", kind, attempts: eb("attempts", "+", 1), error: null }))
    .where("date", "=", date)
    .execute();
  return (await getDailyRun(store, date)) as DailyRunRow;
}

export async function finishDailyRun(
  store: Store,
  date: string,
  outcome: { status: "complete" | "failed"; summary: unknown; error?: string | undefined },
  now: Date,
): Promise<void> {
  await store.db
    .updateTable("daily_runs")
    .set({ status: outcome.status, finished_at: now.toISOString(), summary: JSON.stringify(outcome.summary), error: outcome.error ?? null })
    .where("date", "=", date)
    .execute();
}

export async function getDailyRun(store: Store, date: string): Promise<DailyRunRow | undefined> {
  const row = await store.db.selectFrom("daily_runs").selectAll().where("date", "=", date).executeTakeFirst();
  return row === undefined ? undefined : { ...row, attempts: Number(row.attempts) };
}

export async function listDailyRuns(store: Store, limit = 30): Promise<DailyRunRow[]> {
  const rows = await store.db.selectFrom("daily_runs").selectAll().orderBy("date", "desc").limit(limit).execute();
  return rows.map((r) => ({ ...r, attempts: Number(r.attempts) }));
}

/** The latest complete monthly score run of a model before `date`: what a risk review compares against. */
export async function previousMonthlyRun(store: Store, modelName: string, date: string): Promise<{ run_id: string; as_of: string } | undefined> {
  return store.db
    .selectFrom("score_runs")
    .select(["run_id", "as_of"])
    .where("kind", "=", "monthly")
    .where("status", "=", "complete")
    .where("model_name", "=", modelName)
    .where("as_of", "<", date)
    .orderBy("as_of", "desc")
    .limit(1)
    .executeTakeFirst();
}
