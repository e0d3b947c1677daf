import { join } from "node:path";
import { importOptOuts } from "../campaigns/ingest.js";
import type { PlanResult } from "../campaigns/plan.js";
import { type RiskRule, riskRule } from "../campaigns/select.js";
import type { SendSummary } from "../campaigns/send.js";
import type { Config, DailyCampaignConfig } from "../config.js";
import { openSource, type SourceSpec } from "../data/source.js";
import { type KeepResult, keepSnapshot } from "../dataset/keep.js";
import { ChurnopsError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import type { Band } from "../model/bundle.js";
import type { ChurnModel } from "../model/runtime.js";
import { retrainIfNeeded } from "../monitoring/retrain.js";
import { newOwner, ownerIsGone } from "../owner.js";
import { type BatchSummary, scoreBatch } from "../scoring/batch.js";
import { acquireLock, finishDailyRun, releaseLock, renewLock, startDailyRun } from "../store/daily.js";
import type { Store } from "../store/db.js";
import { applyPrune, keepsEverything, type PruneResult, planPrune, retentionPolicy } from "../store/retention.js";
import { planAndSend } from "./campaign.js";
import { type RiskReview, writeRiskReview } from "./review.js";
import { type WatchSummary, watchAfterScoring } from "./watch.js";

/** The day's snapshot as the job kept it for training sets (or why not); absent when keeping is off. */
export type SnapshotKept = KeepResult | { kept: false; error: string };

export interface DailyOptions {
  config: Config;
  store: Store;
  /** YYYY-MM-DD: the day the snapshot and scores are for. */
  date: string;
  /** The day's customer snapshot. */
  data: SourceSpec;
  /** Loads the model to score with (the CLI resolves `daily.model` through the registry). */
  loadModel: () => Promise<ChurnModel>;
  log?: Logger | undefined;
  env?: NodeJS.ProcessEnv;
  onProgress?: Parameters<typeof scoreBatch>[0]["onProgress"];
}

export interface DailyCampaignSummary {
  name: string;
  plan: { status: PlanResult["status"]; treated: number; control: number; eligible: number };
  send: Pick<SendSummary, "adapter" | "target" | "delivered" | "dead" | "states" | "failures">;
}

export interface DailySummary {
  date: string;
  kind: "daily" | "monthly";
  /** How many times the job for this date has started (1 = first run). */
  attempt: number;
  score: Pick<BatchSummary, "runId" | "status" | "modelName" | "modelVersion" | "rowsRead" | "rowsScored" | "rowsQuarantined" | "resumedFrom" | "bands">;
  /** The scoring model's bands with their cut-offs (absent in summaries stored before they were recorded). */
  modelBands?: readonly Band[];
  optOuts: { column: string; optedOut: number; added: number } | null;
  /** The snapshot kept for point-in-time training sets (absent in summaries stored before it was kept). */
  snapshot?: SnapshotKept | null;
  campaigns: DailyCampaignSummary[];
  review: RiskReview | null;
  /** Drift, realised performance, metrics and retraining, checked after scoring (null until then). */
  watch: WatchSummary | null;
  /** What `[retention]` removed after the day's work (null when no retention is configured). */
  retention?: (PruneResult & { kept: number }) | { error: string } | null;
  durationMs: number;
}

async function retrainBeforeScoring(deps: { store: Store; config: Config; log: Logger }, date: string): Promise<WatchSummary["retrain"]> {
  try {
    return await retrainIfNeeded(deps, { date });
  } catch (err) {
    const message = (err as Error).message;
    deps.log.error({ event: "daily.watch_failed", step: "retrain", err: message }, "monitoring step retrain failed");
    return { error: message };
  }
}

/**
 * The configured retention, applied once the day's work is done (never before: today's run, campaigns and alerts
 * are what it must keep). Isolated like the monitoring steps: a failure is reported, the day still completes.
 */
async function applyRetention(deps: { store: Store; config: Config; log: Logger | undefined }, date: string): Promise<DailySummary["retention"]> {
  const policy = retentionPolicy(deps.config.retention, deps.config.monitoring.performance.horizon_days, date);
  if (keepsEverything(policy)) return null;
  try {
    const plan = await planPrune(deps.store, policy);
    const removed = await applyPrune(deps.store, plan);
    deps.log?.info({ event: "daily.retention", ...removed, kept: plan.kept.length }, "old scores and predictions pruned");
    return { ...removed, kept: plan.kept.length };
  } catch (err) {
    const message = (err as Error).message;
    deps.log?.error({ event: "daily.retention_failed", err: message }, "retention failed");
    return { error: message };
  }
}

export function dayKind(date: string, monthlyDay: number): "daily" | "monthly" {
  return Number(date.slice(8, 10)) === monthlyDay ? "monthly" : "daily";
}

/** A snapshot path or URL for a date: `{date}` becomes YYYY-MM-DD. */
export function snapshotFor(template: string, date: string): string {
  return template.replaceAll("{date}", date);
}

function ruleOf(c: DailyCampaignConfig): RiskRule {
  const rule = riskRule({ minBand: c.min_band, threshold: c.threshold, topPct: c.top_pct });
  if (rule === null) throw new ChurnopsError("bad_config", `daily campaign ${c.name}: give one of min_band, threshold, top_pct`, { field: "daily.campaigns" });
  return rule;
}

async function columnsOf(spec: SourceSpec): Promise<readonly string[]> {
  const source = await openSource(spec);
  try {
    return source.columns;
  } finally {
    await source.close();
  }
}

/** A daily step's inputs: the job's options, the day's kind and its logger. */
interface DailyStep {
  options: DailyOptions;
  kind: "daily" | "monthly";
  log: Logger | undefined;
}

/** The store lock of the date, renewed in the background; `check` throws once it is lost. */
async function holdDailyLock(store: Store, date: string, ttlSeconds: number, now: Date): Promise<{ check(): void; release(): Promise<void> }> {
  const lockName = `daily:${date}`;
  const owner = newOwner();
  const ttlMs = ttlSeconds * 1000;
  const lock = await acquireLock(store, lockName, owner, now, new Date(now.getTime() + ttlMs), ownerIsGone);
  if (!lock.acquired)
    throw new ChurnopsError("run_locked", `the daily job for ${date} is already running (${lock.owner}, lock held until ${lock.expiresAt})`, { exitCode: 75 });
  let lockLost = false;
  const heartbeat = setInterval(
    () => {
      renewLock(store, lockName, owner, new Date(Date.now() + ttlMs)).then(
        (held) => {
          if (!held) lockLost = true;
        },
        () => undefined,
      );
    },
    Math.max(1000, ttlMs / 3),
  );
  return {
    check: () => {
      if (lockLost) throw new ChurnopsError("run_locked", `lost the daily lock for ${date} (another job took it over after it expired); stopping`);
    },
    release: async () => {
      clearInterval(heartbeat);
      await releaseLock(store, lockName, owner).catch(() => undefined);
    },
  };
}

/** Score the day's snapshot (resumed if an earlier attempt was interrupted). */
async function scoreSnapshot(step: DailyStep, model: ChurnModel): Promise<BatchSummary> {
  const { options, kind, log } = step;
  const { config, store, date } = options;
  log?.info({ event: "daily.score", kind }, "scoring the snapshot");
  return scoreBatch({
    source: options.data,
    model,
    kind,
    asOf: date,
    store,
    chunkSize: config.scoring.chunk_size,
    badRows: config.scoring.bad_rows,
    log,
    onProgress: options.onProgress,
  });
}

/** Keep the snapshot for point-in-time training sets; a failure is logged and recorded, never fatal. */
async function keepTodaysSnapshot(step: DailyStep, scored: BatchSummary): Promise<SnapshotKept> {
  const { options, log } = step;
  return keepSnapshot(options.store, options.config.home, {
    date: options.date,
    runId: scored.runId,
    source: options.data,
    description: options.data.data,
  }).catch((err: Error): SnapshotKept => {
    log?.error({ event: "daily.snapshot_failed", err: err.message }, "keeping the snapshot failed");
    return { kept: false, error: err.message };
  });
}

/** Refresh opt-outs from the snapshot's opt-out column, when it has one. */
async function refreshOptOuts(step: DailyStep, idColumn: string): Promise<DailySummary["optOuts"]> {
  const { options } = step;
  const column = options.config.daily.opt_out_column;
  if (!(await columnsOf(options.data)).includes(column)) return null;
  const r = await importOptOuts(options.store, options.data, idColumn, column);
  return { column, optedOut: r.optedOut, added: r.added };
}

/** Plan and send one configured campaign on the day's run (named `<name>-<date>`, so a re-run adds nothing). */
async function dailyCampaign(
  step: DailyStep,
  c: DailyCampaignConfig,
  scored: BatchSummary,
  model: ChurnModel,
  idColumn: string,
): Promise<DailyCampaignSummary> {
  const { options, log } = step;
  const { config, store, date } = options;
  const name = `${c.name}-${date}`;
  log?.info({ event: "daily.campaign", campaign: name }, "planning and sending a campaign");
  const { plan, send: sent } = await planAndSend(
    store,
    config,
    {
      name,
      run: scored.runId,
      rule: ruleOf(c),
      budget: c.budget ?? null,
      controlShare: c.control_share ?? config.campaigns.control_share,
      cooldownDays: c.cooldown_days ?? config.campaigns.cooldown_days,
      seed: c.seed,
      offer: c.offer,
      values:
        c.value_column === undefined
          ? undefined
          : { source: options.data, idColumn, valueColumn: c.value_column, offerCost: c.offer_cost ?? 0, offerSuccess: c.offer_success ?? 1 },
      modelBands: async () => model.bundle.bands,
    },
    { adapter: c.adapter },
    { env: options.env, log },
  );
  return {
    name,
    plan: { status: plan.status, treated: plan.counts.treated, control: plan.counts.control, eligible: plan.counts.eligible },
    send: { adapter: sent.adapter, target: sent.target, delivered: sent.delivered, dead: sent.dead, states: sent.states, failures: sent.failures },
  };
}

/** The monthly run's risk review (a file under the home's reviews/). */
async function monthlyReview(step: DailyStep, scored: BatchSummary): Promise<RiskReview> {
  const { config, store, date } = step.options;
  return writeRiskReview(store, {
    runId: scored.runId,
    modelName: scored.modelName,
    date,
    dir: join(config.home, "reviews"),
    top: config.daily.review_top,
  });
}

/**
 * The daily job: score the day's snapshot (the monthly run on the configured day), refresh opt-outs from it,
 * plan and send the configured campaigns, and on the monthly run write a risk review. Every step is
 * idempotent on its own (deterministic run ids, named campaigns, the outbox), so re-running a date adds
 * nothing and a run that crashed anywhere is completed by the next. A store lock per date, renewed while the
 * job runs, keeps two jobs for the same date from running at once.
 */
export async function runDaily(options: DailyOptions): Promise<DailySummary> {
  const started = performance.now();
  const { config, store, date } = options;
  const daily = config.daily;
  const now = new Date();
  const lock = await holdDailyLock(store, date, daily.lock_ttl_seconds, now);
  const checkLock = lock.check;
  const kind = dayKind(date, daily.monthly_day);
  const run = await startDailyRun(store, date, kind, now);
  const log = options.log?.child({ daily: date, attempt: run.attempts });
  const step: DailyStep = { options, kind, log };
  const summary: DailySummary = {
    date,
    kind,
    attempt: run.attempts,
    score: { runId: "", status: "complete", modelName: "", modelVersion: "", rowsRead: 0, rowsScored: 0, rowsQuarantined: 0, resumedFrom: 0, bands: {} },
    optOuts: null,
    campaigns: [],
    review: null,
    watch: null,
    durationMs: 0,
  };
  try {
    // Retrain first (when due: the cadence, or an alert since the last decision), so that a champion the gate just
    // promoted scores today's snapshot. Isolated like every monitoring step: a failure never stops the scoring.
    const retrained = await retrainBeforeScoring({ store, config, log: log ?? createLogger({ daily: date }) }, date);
    const model = await options.loadModel();
    const bundleDir = model.dir;
    try {
      const scored = await scoreSnapshot(step, model);
      summary.score = {
        runId: scored.runId,
        status: scored.status,
        modelName: scored.modelName,
        modelVersion: scored.modelVersion,
        rowsRead: scored.rowsRead,
        rowsScored: scored.rowsScored,
        rowsQuarantined: scored.rowsQuarantined,
        resumedFrom: scored.resumedFrom,
        bands: scored.bands,
      };
      summary.modelBands = model.bundle.bands;
      checkLock();
      if (daily.keep_snapshots) summary.snapshot = await keepTodaysSnapshot(step, scored);
      const idColumn = model.bundle.schema.id_column ?? "customer_id";
      summary.optOuts = await refreshOptOuts(step, idColumn);
      for (const c of daily.campaigns) {
        checkLock();
        summary.campaigns.push(await dailyCampaign(step, c, scored, model, idColumn));
      }
      if (kind === "monthly") {
        checkLock();
        summary.review = await monthlyReview(step, scored);
      }
    } finally {
      await model.close();
    }
    checkLock();
    summary.watch = await watchAfterScoring(
      { store, config, log: log ?? createLogger({ daily: date }) },
      { runId: summary.score.runId, date, bundleDir, retrain: retrained },
    );
    checkLock();
    summary.retention = await applyRetention({ store, config, log }, date);
    summary.durationMs = performance.now() - started;
    await finishDailyRun(store, date, { status: "complete", summary }, new Date());
    return summary;
  } catch (err) {
    summary.durationMs = performance.now() - started;
    await finishDailyRun(store, date, { status: "failed", summary, error: (err as Error).message }, new Date()).catch(() => undefined);
    throw err;
  } finally {
    await lock.release();
  }
}
