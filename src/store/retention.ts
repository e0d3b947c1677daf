import { sql } from "kysely";
import type { RetentionConfig } from "../config.js";
import { addDays } from "../days.js";
import type { Store } from "./db.js";
import { runKeyOf } from "./runs.js";

/**
 * Retention (`churnops prune`, and the daily job when `[retention]` is configured): old runs' scores and
 * quarantined rows are removed, old API predictions too. A run keeps its record (counts, source, drift profile and
 * reports), marked `pruned_at`, so history still says what was scored. Never pruned: a run a campaign was planned
 * from, a run an open alert names, a run whose outcome horizon has not closed (realised performance still needs
 * its scores), the latest complete run of each kind, and runs still running or being re-run.
 */
export interface RetentionPolicy {
  /** Daily runs dated more than this many days before `today` lose their scores; null keeps them all. */
  keepDailyDays: number | null;
  /** Monthly runs dated more than this many months before `today`; null keeps them all. */
  keepMonthlyMonths: number | null;
  /** API predictions logged more than this many days before `today`; null keeps them all. */
  keepPredictionsDays: number | null;
  /** Outcomes label a score up to this many days after its date (monitoring.performance.horizon_days). */
  horizonDays: number;
  /** Alerts have no acknowledgement: one counts as open for this many days after the day it was raised. */
  alertOpenDays: number;
  /** YYYY-MM-DD. */
  today: string;
}

export interface PrunedRun {
  run_id: string;
  kind: string;
  as_of: string;
  scores: number;
}

export interface KeptRun {
  run_id: string;
  kind: string;
  as_of: string;
  reason: string;
}

export interface PrunePlan {
  prune: PrunedRun[];
  /** Runs old enough to prune that are kept, and why. */
  kept: KeptRun[];
  predictions: { before: string; rows: number } | null;
}

export interface PruneResult {
  runs: number;
  scores: number;
  quarantined: number;
  predictions: number;
}

/** Explicit limits (from flags) over `[retention]`, where 0 means keep forever. */
export interface RetentionOverrides {
  keepDailyDays?: number | undefined;
  keepMonthlyMonths?: number | undefined;
  keepPredictionsDays?: number | undefined;
}

export function retentionPolicy(config: RetentionConfig, horizonDays: number, today: string, overrides: RetentionOverrides = {}): RetentionPolicy {
  const pick = (given: number | undefined, configured: number): number | null => given ?? (configured > 0 ? configured : null);
  return {
    keepDailyDays: pick(overrides.keepDailyDays, config.daily_days),
    keepMonthlyMonths: pick(overrides.keepMonthlyMonths, config.monthly_months),
    keepPredictionsDays: pick(overrides.keepPredictionsDays, config.predictions_days),
    horizonDays,
    alertOpenDays: config.alert_open_days,
    today,
  };
}

/** True when the policy removes nothing at all. */
export function keepsEverything(policy: RetentionPolicy): boolean {
  return policy.keepDailyDays === null && policy.keepMonthlyMonths === null && policy.keepPredictionsDays === null;
}

/** A month earlier, day for day (the 31st goes to the month's last day), as YYYY-MM-DD. */
export function monthsBefore(date: string, months: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - months, 1));
  const last = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d.getUTCDate(), last));
  return target.toISOString().slice(0, 10);
}

/** What a prune with this policy would remove and keep; nothing is changed. */
export async function planPrune(store: Store, policy: RetentionPolicy): Promise<PrunePlan> {
  const cutoffs: Record<string, string | null> = {
    daily: policy.keepDailyDays === null ? null : addDays(policy.today, -policy.keepDailyDays),
    monthly: policy.keepMonthlyMonths === null ? null : monthsBefore(policy.today, policy.keepMonthlyMonths),
  };
  const runs = await store.db
    .selectFrom("score_runs")
    .select(["run_id", "kind", "as_of", "status", "rows_scored", "rows_quarantined", "finished_at"])
    .where("pruned_at", "is", null)
    .where("replaces", "is", null)
    .where("status", "in", ["complete", "failed"])
    .orderBy("as_of")
    .orderBy("run_id")
    .execute();
  const old = runs.filter((r) => {
    const cutoff = cutoffs[r.kind];
    return cutoff !== null && cutoff !== undefined && r.as_of < cutoff;
  });
  const prune: PrunedRun[] = [];
  const kept: KeptRun[] = [];
  if (old.length > 0) {
    const ids = old.map((r) => r.run_id);
    const campaigns = await store.db.selectFrom("campaigns").select(["name", "run_id"]).where("run_id", "in", ids).orderBy("name").execute();
    const alertSince = addDays(policy.today, -policy.alertOpenDays);
    // An alert is open from the day it was raised for alertOpenDays; with 0, alerts keep nothing.
    const alerts =
      policy.alertOpenDays === 0
        ? []
        : await store.db
            .selectFrom("alerts")
            .select(["rule", "day", "run_id"])
            .where("run_id", "in", ids)
            .where("day", ">=", alertSince)
            .orderBy("day")
            .execute();
    const latest = new Map<string, string>();
    for (const r of runs)
      if (r.status === "complete" && r.finished_at !== null && (latest.get(r.kind) ?? "") < `${r.finished_at}\u0000${r.run_id}`)
        latest.set(r.kind, `${r.finished_at}\u0000${r.run_id}`);
    const labelsUntil = addDays(policy.today, -policy.horizonDays);
    for (const r of old) {
      const campaign = campaigns.find((c) => c.run_id === r.run_id);
      const alert = alerts.find((a) => a.run_id === r.run_id);
      let reason: string | null = null;
      if (campaign !== undefined) reason = `campaign ${campaign.name} was planned from it`;
      else if (alert !== undefined) reason = `alert ${alert.rule} of ${alert.day} names it (open for ${policy.alertOpenDays} days)`;
      else if (r.status === "complete" && r.as_of >= labelsUntil)
        reason = `its outcome horizon (${policy.horizonDays} days) ends ${addDays(r.as_of, policy.horizonDays)}: realised performance still needs its scores`;
      else if (latest.get(r.kind)?.endsWith(`\u0000${r.run_id}`) === true) reason = `the latest complete ${r.kind} run`;
      if (reason === null) prune.push({ run_id: r.run_id, kind: r.kind, as_of: r.as_of, scores: Number(r.rows_scored) });
      else kept.push({ run_id: r.run_id, kind: r.kind, as_of: r.as_of, reason });
    }
  }
  let predictions: PrunePlan["predictions"] = null;
  if (policy.keepPredictionsDays !== null) {
    const before = addDays(policy.today, -policy.keepPredictionsDays);
    const row = await store.db
      .selectFrom("predictions")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("created_at", "<", before)
      .executeTakeFirstOrThrow();
    predictions = { before, rows: Number(row.n) };
  }
  return { prune, kept, predictions };
}

/** Rows removed per statement: each delete is its own short transaction, so readers and writers keep going. */
const DELETE_ROWS = 20_000;

/**
 * Remove what a plan names. A run is marked pruned before its rows go, so a prune stopped half way leaves a run
 * that says it was pruned (never one that looks complete with scores missing); running prune again finishes it.
 */
export async function applyPrune(store: Store, plan: PrunePlan, now: Date = new Date()): Promise<PruneResult> {
  const result: PruneResult = { runs: 0, scores: 0, quarantined: 0, predictions: 0 };
  for (const run of plan.prune) {
    await store.db.updateTable("score_runs").set({ pruned_at: now.toISOString() }).where("run_id", "=", run.run_id).where("pruned_at", "is", null).execute();
    result.runs++;
  }
  const pending = await store.db.selectFrom("score_runs").select("run_id").where("pruned_at", "is not", null).execute();
  for (const { run_id } of pending) {
    result.scores += await deleteScoresInChunks(store, run_id);
    result.quarantined += await deleteInChunks(store, "quarantine", sql`run_id = ${run_id}`);
  }
  if (plan.predictions !== null) result.predictions = await deleteInChunks(store, "predictions", sql`created_at < ${plan.predictions.before}`);
  return result;
}

/**
 * A run's scores, DELETE_ROWS at a time. score_rows is keyed (run_key, customer_id) and, in SQLite, has no rowid
 * (WITHOUT ROWID, migration 020): each statement takes the next ids of the run from the key itself.
 */
async function deleteScoresInChunks(store: Store, runId: string): Promise<number> {
  const key = await runKeyOf(store, runId);
  if (key === null) return 0;
  if (store.dialect === "postgres") return deleteInChunks(store, "score_rows", sql`run_key = ${key}`);
  let total = 0;
  for (;;) {
    const res =
      await sql`DELETE FROM score_rows WHERE run_key = ${key} AND customer_id IN (SELECT customer_id FROM score_rows WHERE run_key = ${key} LIMIT ${DELETE_ROWS})`.execute(
        store.db,
      );
    const n = Number(res.numAffectedRows ?? 0n);
    total += n;
    if (n < DELETE_ROWS) return total;
  }
}

async function deleteInChunks(store: Store, table: "score_rows" | "quarantine" | "predictions", where: ReturnType<typeof sql>): Promise<number> {
  const t = sql.table(table);
  // SQLite's rowid and PostgreSQL's ctid name a physical row: a bounded delete either database plans well.
  const query =
    store.dialect === "sqlite"
      ? sql`DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE ${where} LIMIT ${DELETE_ROWS})`
      : sql`DELETE FROM ${t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${t} WHERE ${where} LIMIT ${DELETE_ROWS}))`;
  let total = 0;
  for (;;) {
    const res = await query.execute(store.db);
    const n = Number(res.numAffectedRows ?? 0n);
    total += n;
    if (n < DELETE_ROWS) return total;
  }
}
