import { sql } from "kysely";
import type { Store } from "./db.js";
import { churnAfter } from "./outcomes.js";
import { SCORE_RUN_COLUMNS, scoresOfRun } from "./runs.js";
import type { AlertsTable, DriftReportsTable, GateDecisionsTable, PerformanceReportsTable, ScoreRunsTable } from "./schema.js";

/** Read models of monitoring: drift and performance reports, alerts, gate decisions. No SQL outside src/store. */
export type DriftReportRow = DriftReportsTable;
export type PerformanceReportRow = PerformanceReportsTable;
export type AlertRow = AlertsTable;
export type GateDecisionRow = GateDecisionsTable;

/** A run's drift report; checking the run again replaces it. */
export async function saveDriftReport(store: Store, row: DriftReportRow): Promise<void> {
  await store.db
    .insertInto("drift_reports")
    .values(row)
    .onConflict((oc) =>
      oc.column("run_id").doUpdateSet((eb) => ({
        severity: eb.ref("excluded.severity"),
        max_psi: eb.ref("excluded.max_psi"),
        rows_profiled: eb.ref("excluded.rows_profiled"),
        report: eb.ref("excluded.report"),
        created_at: eb.ref("excluded.created_at"),
      })),
    )
    .execute();
}

export async function getDriftReport(store: Store, runId: string): Promise<DriftReportRow | undefined> {
  return store.db.selectFrom("drift_reports").selectAll().where("run_id", "=", runId).executeTakeFirst();
}

export async function listDriftReports(store: Store, limit = 20): Promise<DriftReportRow[]> {
  const rows = await store.db.selectFrom("drift_reports").selectAll().orderBy("as_of", "desc").orderBy("created_at", "desc").limit(limit).execute();
  return rows.map((r) => ({ ...r, rows_profiled: Number(r.rows_profiled) }));
}

export async function savePerformanceReport(store: Store, row: PerformanceReportRow): Promise<void> {
  await store.db
    .insertInto("performance_reports")
    .values(row)
    .onConflict((oc) =>
      oc.columns(["model_name", "model_version", "month", "labels"]).doUpdateSet((eb) => ({
        run_id: eb.ref("excluded.run_id"),
        labelled: eb.ref("excluded.labelled"),
        recall: eb.ref("excluded.recall"),
        precision: eb.ref("excluded.precision"),
        roc_auc: eb.ref("excluded.roc_auc"),
        report: eb.ref("excluded.report"),
        computed_at: eb.ref("excluded.computed_at"),
      })),
    )
    .execute();
}

export async function listPerformanceReports(store: Store, limit = 50): Promise<PerformanceReportRow[]> {
  const rows = await store.db.selectFrom("performance_reports").selectAll().orderBy("month", "desc").orderBy("model_version", "desc").limit(limit).execute();
  return rows.map((r) => ({ ...r, labelled: Number(r.labelled) }));
}

/**
 * The run that stands for each (model, version, month): the month's earliest complete run. Judging one run per
 * month keeps a customer scored every day from counting thirty times.
 */
export async function monthlyRuns(store: Store): Promise<ScoreRunsTable[]> {
  const runs = await store.db
    .selectFrom("score_runs")
    .select(SCORE_RUN_COLUMNS)
    .where("status", "=", "complete")
    .orderBy("as_of")
    .orderBy("started_at")
    .execute();
  const seen = new Set<string>();
  const out: ScoreRunsTable[] = [];
  for (const r of runs) {
    const key = `${r.model_name}\u0000${r.model_version}\u0000${r.as_of.slice(0, 7)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}

export interface LabelledScore {
  customer_id: string;
  probability: number;
  decision: number;
  churned: number;
}

/**
 * Scores of a run whose customer has an outcome observed in (from, to] (YYYY-MM-DD); a customer counts as
 * churned when any such observation says so.
 */
export async function labelledScores(store: Store, runId: string, from: string, to: string): Promise<LabelledScore[]> {
  const outcomes = churnAfter(store, from, to).as("o");
  const rows = await store.db
    .selectFrom("scores as s")
    .innerJoin(outcomes, "o.customer_id", "s.customer_id")
    .select(["s.customer_id", "s.probability", "s.decision", "o.churned"])
    .where("s.run_id", "=", runId)
    .where(scoresOfRun(runId))
    .orderBy("s.customer_id")
    .execute();
  return rows.map((r) => ({ customer_id: r.customer_id, probability: Number(r.probability), decision: Number(r.decision), churned: Number(r.churned) }));
}

export interface CampaignArm {
  campaign: string;
  customer_id: string;
  arm: "treatment" | "control";
}

/** Members of campaigns planned on a day in [from, to) (YYYY-MM-DD): whose outcomes an offer may have changed. */
export async function campaignArmsBetween(store: Store, from: string, to: string): Promise<CampaignArm[]> {
  return store.db
    .selectFrom("campaign_members as m")
    .innerJoin("campaigns as c", "c.name", "m.campaign")
    .select(["m.campaign", "m.customer_id", "m.arm"])
    .where("c.as_of", ">=", from)
    .where("c.as_of", "<", to)
    .execute();
}

/** Record an alert unless the same condition was already recorded that day; true when it is new. */
export async function insertAlert(store: Store, row: Omit<AlertRow, "delivery_attempts" | "delivered_at" | "delivery_error">): Promise<boolean> {
  const res = await store.db
    .insertInto("alerts")
    .values({ ...row, delivery_attempts: 0, delivered_at: null, delivery_error: null })
    .onConflict((oc) => oc.column("key").doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function recordAlertDelivery(store: Store, key: string, outcome: { ok: boolean; error: string | null; at: string }): Promise<void> {
  await store.db
    .updateTable("alerts")
    .set((eb) => ({
      delivery_attempts: eb("delivery_attempts", "+", 1),
      delivered_at: outcome.ok ? outcome.at : null,
      delivery_error: outcome.ok ? null : outcome.error,
    }))
    .where("key", "=", key)
    .execute();
}

/** Alerts a webhook has not taken yet, oldest first. */
export async function undeliveredAlerts(store: Store, maxAttempts: number, limit = 100): Promise<AlertRow[]> {
  const rows = await store.db
    .selectFrom("alerts")
    .selectAll()
    .where("delivered_at", "is", null)
    .where("delivery_attempts", "<", maxAttempts)
    .orderBy("created_at")
    .limit(limit)
    .execute();
  return rows.map(normalizeAlert);
}

function normalizeAlert(r: AlertRow): AlertRow {
  return { ...r, delivery_attempts: Number(r.delivery_attempts) };
}

export async function listAlerts(
  store: Store,
  options: { since?: string; rules?: readonly string[]; severity?: "warn" | "alert"; limit?: number } = {},
): Promise<AlertRow[]> {
  let q = store.db.selectFrom("alerts").selectAll();
  if (options.since !== undefined) q = q.where("created_at", ">=", options.since);
  if (options.rules !== undefined && options.rules.length > 0) q = q.where("rule", "in", options.rules);
  if (options.severity !== undefined) q = q.where("severity", "=", options.severity);
  const rows = await q
    .orderBy("created_at", "desc")
    .limit(options.limit ?? 100)
    .execute();
  return rows.map(normalizeAlert);
}

export async function saveGateDecision(store: Store, row: GateDecisionRow): Promise<void> {
  await store.db.insertInto("gate_decisions").values(row).execute();
}

export async function setGatePromoted(store: Store, id: string): Promise<void> {
  await store.db.updateTable("gate_decisions").set({ promoted: 1 }).where("id", "=", id).execute();
}

export async function listGateDecisions(store: Store, options: { modelName?: string; limit?: number } = {}): Promise<GateDecisionRow[]> {
  let q = store.db.selectFrom("gate_decisions").selectAll();
  if (options.modelName !== undefined) q = q.where("model_name", "=", options.modelName);
  const rows = await q
    .orderBy("decided_at", "desc")
    .orderBy(sql`id`)
    .limit(options.limit ?? 20)
    .execute();
  return rows.map((r) => ({ ...r, holdout_rows: Number(r.holdout_rows), promoted: Number(r.promoted) }));
}
