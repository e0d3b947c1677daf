import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Config } from "../config.js";
import { openSource } from "../data/source.js";
import { quoteIdent, quoteLiteral } from "../data/sql-quote.js";
import { RowValidator } from "../data/validate.js";
import { type BuildSummary, buildDataset } from "../dataset/build.js";
import { addDays } from "../dataset/horizon.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import { batchFromRows } from "../model/features.js";
import { clearResolveCache, loadModel } from "../model/registry.js";
import type { ChurnModel } from "../model/runtime.js";
import { trainerJson } from "../model/trainer.js";
import { lastJudged, type RetrainDecisionRow, saveRetrainDecision } from "../store/datasets.js";
import type { Store } from "../store/db.js";
import { listAlerts, listGateDecisions, saveGateDecision, setGatePromoted } from "../store/monitoring.js";
import type { AlertRule } from "./alerts.js";
import { evaluate, type GateDecision, gateDecision, type ModelEvaluation, precisionAtRecall } from "./gate.js";

export interface RetrainDeps {
  store: Store;
  config: Config;
  log: Logger;
}

export interface RetrainOptions {
  /** Recent labelled customers: a CSV or Parquet file with the champion's features, id and target columns. */
  data: string;
  /** Why: `manual`, `alert:…`, `schedule`. Recorded with the decision. */
  trigger: string;
  /** Judge an existing version (or bundle directory) instead of training a new challenger. */
  challenger?: string | undefined;
  /** Decide only; leave the champion alias alone. */
  dryRun?: boolean | undefined;
  seed?: number | undefined;
  holdoutShare?: number | undefined;
  /** The day the decision is for (default today), recorded in the retrain history. */
  date?: string | undefined;
  /** The point-in-time training set `data` is, when it was built from the store. */
  dataset?: Pick<BuildSummary, "fingerprint" | "rows" | "positives"> | undefined;
}

export interface RetrainResult {
  decision_id: string;
  decision: GateDecision["decision"];
  reason: string;
  promoted: boolean;
  trigger: string;
  champion: ModelEvaluation;
  challenger: ModelEvaluation;
  checks: GateDecision["checks"];
  champion_reference_precision: number | null;
  holdout: { path: string; rows: number; excluded: number };
  trained: { version: string; bundle_path: string; train_path: string } | null;
}

function relationOf(path: string): string {
  const lower = path.toLowerCase();
  if (lower.endsWith(".parquet") || lower.endsWith(".pq")) return `read_parquet(${quoteLiteral(path)})`;
  if (/\.(csv|tsv|txt)(\.gz)?$/.test(lower)) return `read_csv(${quoteLiteral(path)}, header = true)`;
  throw new ChurnopsError("bad_input", `${path}: retraining reads a .csv or .parquet file of labelled customers`, { field: "data" });
}

/**
 * Split labelled customers into a training part and a holdout by a seeded hash of the customer id: stable
 * across runs, and no customer is in both. Written as Parquet next to each other under <home>/retrain/.
 */
async function splitHoldout(
  data: string,
  idColumn: string,
  share: number,
  seed: number,
  dir: string,
): Promise<{ train: string; holdout: string; columns: string[] }> {
  const abs = resolve(data);
  if (!existsSync(abs)) throw new ChurnopsError("data_not_found", `no such file: ${abs}`, { field: "data" });
  mkdirSync(dir, { recursive: true });
  const train = join(dir, "train.parquet");
  const holdout = join(dir, "holdout.parquet");
  const instance = await DuckDBInstance.create(":memory:", { threads: "1" });
  const conn = await instance.connect();
  try {
    const rel = relationOf(abs);
    const columns = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${rel}`)).getRowObjects().map((r) => String(r.column_name));
    if (!columns.includes(idColumn)) throw new ChurnopsError("bad_input", `${abs} has no id column ${idColumn}`, { field: "data" });
    const inHoldout = `(hash(CAST(${quoteIdent(idColumn)} AS VARCHAR) || ${quoteLiteral(`:${seed}`)}) % 1000000) < ${Math.round(share * 1_000_000)}`;
    await conn.run(`COPY (SELECT * FROM ${rel} WHERE NOT ${inHoldout}) TO ${quoteLiteral(train)} (FORMAT parquet)`);
    await conn.run(`COPY (SELECT * FROM ${rel} WHERE ${inHoldout}) TO ${quoteLiteral(holdout)} (FORMAT parquet)`);
    return { train, holdout, columns };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

interface HoldoutScores {
  churned: boolean[];
  probabilities: Float64Array[];
  excluded: number;
}

/**
 * Score the same holdout rows with every model. A row either model's schema refuses is left out for all, so
 * the numbers compare like with like.
 */
async function scoreHoldout(models: readonly ChurnModel[], path: string, target: string, positive: string): Promise<HoldoutScores> {
  const first = models[0] as ChurnModel;
  const features = [...new Set(models.flatMap((m) => m.bundle.schema.features.map((f) => f.name)))];
  const source = await openSource({ data: path });
  const labels: boolean[] = [];
  const perModel: number[][] = models.map(() => []);
  let excluded = 0;
  try {
    for await (const chunk of source.chunks({ columns: [...features, target], chunkSize: 20_000, skipRows: 0 })) {
      const valid = new Uint8Array(chunk.size).fill(1);
      const checked = models.map((m) => new RowValidator(m.bundle).checkChunk(chunk.columns, chunk.size, { textNumbers: source.textNumbers }));
      for (const c of checked) for (const bad of c.badRows) valid[bad.index] = 0;
      const y = chunk.columns.get(target) as unknown[];
      for (let i = 0; i < chunk.size; i++) if (y[i] === null || y[i] === undefined) valid[i] = 0;
      for (let k = 0; k < models.length; k++) {
        const model = models[k] as ChurnModel;
        const rows: Record<string, string | number | null>[] = [];
        for (let i = 0; i < chunk.size; i++) {
          if (valid[i] !== 1) continue;
          const row: Record<string, string | number | null> = {};
          for (const f of model.bundle.schema.features) {
            const v = chunk.columns.get(f.name)?.[i];
            row[f.name] = v === null || v === undefined ? null : typeof v === "bigint" ? Number(v) : (v as string | number);
          }
          rows.push(row);
        }
        const probabilities = await model.predict(batchFromRows(model.bundle, rows));
        for (const p of probabilities) perModel[k]?.push(p);
      }
      for (let i = 0; i < chunk.size; i++) {
        if (valid[i] === 1) labels.push(String(y[i]) === positive);
        else excluded++;
      }
    }
  } finally {
    await source.close();
  }
  if (labels.length === 0) throw new ChurnopsError("bad_input", `the holdout ${path} has no row both models can score (from ${first.dir})`);
  return { churned: labels, probabilities: perModel.map((p) => Float64Array.from(p)), excluded };
}

/** Train a challenger on the training part through the Python trainer (it registers it and sets `challenger`). */
async function trainChallenger(
  deps: RetrainDeps,
  champion: ChurnModel,
  trainPath: string,
  columns: readonly string[],
  seed: number,
): Promise<{ version: string; bundle_path: string }> {
  const schema = champion.bundle.schema;
  const keep = new Set([...schema.features.map((f) => f.name), schema.target.column, ...(schema.id_column === null ? [] : [schema.id_column])]);
  const drop = columns.filter((c) => !keep.has(c));
  const args = [
    "train",
    "--data",
    trainPath,
    "--target",
    schema.target.column,
    "--positive",
    String(schema.target.positive),
    ...(schema.id_column === null ? [] : ["--id-col", schema.id_column]),
    ...(drop.length > 0 ? ["--drop", drop.join(",")] : []),
    "--seed",
    String(seed),
    "--recall-target",
    String(champion.bundle.thresholds.recall_target ?? 0.8),
    "--model-name",
    deps.config.model_name,
  ];
  deps.log.info({ event: "retrain.training", data: trainPath, dropped: drop }, "training a challenger");
  // The trainer's own step lines ("[k/9] …", human on a terminal, JSON otherwise) are the progress of this step.
  const r = await trainerJson<{ version: string | number; bundle_path: string }>(deps.config, args, { showProgress: true });
  return { version: String(r.version), bundle_path: r.bundle_path };
}

/**
 * Train a challenger on recent labelled data (or take one), judge champion and challenger on the same holdout
 * through the promotion gate, record the decision with its numbers, and promote when the gate says so.
 */
export async function retrain(deps: RetrainDeps, options: RetrainOptions): Promise<RetrainResult> {
  const { config, store, log } = deps;
  const gate = config.monitoring.gate;
  const seed = options.seed ?? config.monitoring.retrain.seed;
  const share = options.holdoutShare ?? config.monitoring.retrain.holdout_share;
  const champion = await loadModel(config, "champion", { fresh: true });
  let challenger: ChurnModel | null = null;
  try {
    const idColumn = champion.bundle.schema.id_column;
    if (idColumn === null) throw new ChurnopsError("bad_input", "the champion's bundle has no id column: the holdout split needs customer ids");
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const split = await splitHoldout(options.data, idColumn, share, seed, join(config.home, "retrain", stamp));
    let trained: RetrainResult["trained"] = null;
    if (options.challenger === undefined) {
      const t = await trainChallenger(deps, champion, split.train, split.columns, seed);
      trained = { ...t, train_path: split.train };
      challenger = await loadModel(config, t.bundle_path);
    } else challenger = await loadModel(config, options.challenger, { fresh: true });
    const challengerVersion = challenger.version;
    const target = champion.bundle.schema.target;
    const scored = await scoreHoldout([champion, challenger], split.holdout, target.column, String(target.positive));
    const [pChampion, pChallenger] = scored.probabilities as [Float64Array, Float64Array];
    const championEval = evaluate(champion.version, champion.threshold, pChampion, scored.churned);
    const challengerEval = evaluate(challengerVersion, challenger.threshold, pChallenger, scored.churned);
    const recallTarget = champion.bundle.thresholds.recall_target ?? 0.8;
    const atRecall = challengerEval.recall === null ? null : precisionAtRecall(pChampion, scored.churned, challengerEval.recall);
    const decision = gateDecision(championEval, challengerEval, { ...gate, recall_target: recallTarget }, atRecall);
    const sameModel = challengerVersion === champion.version;
    const final: GateDecision = sameModel
      ? { ...decision, decision: "refuse", reason: `the challenger is the champion itself (v${champion.version})` }
      : decision;
    const id = randomUUID();
    await saveGateDecision(store, {
      id,
      decided_at: new Date().toISOString(),
      model_name: config.model_name,
      champion_version: champion.version,
      challenger_version: challengerVersion,
      decision: final.decision,
      reason: final.reason,
      trigger: options.trigger,
      holdout: split.holdout,
      holdout_rows: scored.churned.length,
      champion_metrics: JSON.stringify({ ...championEval, precision_at_challenger_recall: atRecall }),
      challenger_metrics: JSON.stringify({ ...challengerEval, checks: final.checks }),
      promoted: 0,
    });
    let promoted = false;
    if (final.decision === "promote" && options.dryRun !== true) {
      await trainerJson(config, ["promote", "--model-name", config.model_name, "--version", challengerVersion]);
      await setGatePromoted(store, id);
      clearResolveCache();
      promoted = true;
    }
    await recordDecision(deps, {
      date: options.date,
      trigger: options.trigger,
      outcome: promoted ? "promoted" : final.decision === "promote" ? "not_promoted_dry_run" : "refused",
      reason: final.reason,
      dataset: options.dataset,
      gate_decision_id: id,
      champion_version: champion.version,
      challenger_version: challengerVersion,
    });
    log.info(
      {
        event: "retrain.decided",
        decision: final.decision,
        promoted,
        reason: final.reason,
        champion: championEval,
        challenger: challengerEval,
        trigger: options.trigger,
      },
      `gate: ${final.decision}`,
    );
    return {
      decision_id: id,
      decision: final.decision,
      reason: final.reason,
      promoted,
      trigger: options.trigger,
      champion: championEval,
      challenger: challengerEval,
      checks: final.checks,
      champion_reference_precision: final.champion_reference_precision,
      holdout: { path: split.holdout, rows: scored.churned.length, excluded: scored.excluded },
      trained,
    };
  } finally {
    await champion.close();
    await challenger?.close();
  }
}

/** Add a decision to the retrain history (`retrain --history`). */
async function recordDecision(
  deps: RetrainDeps,
  d: {
    date?: string | undefined;
    trigger: string;
    outcome: RetrainDecisionRow["outcome"];
    reason: string;
    dataset?: Pick<BuildSummary, "fingerprint" | "rows" | "positives"> | undefined;
    gate_decision_id?: string | null;
    champion_version?: string | null;
    challenger_version?: string | null;
  },
): Promise<void> {
  const now = new Date().toISOString();
  await saveRetrainDecision(deps.store, {
    id: randomUUID(),
    date: d.date ?? now.slice(0, 10),
    decided_at: now,
    model_name: deps.config.model_name,
    trigger: d.trigger,
    outcome: d.outcome,
    reason: d.reason,
    dataset_fingerprint: d.dataset?.fingerprint ?? null,
    dataset_rows: d.dataset?.rows ?? null,
    dataset_positives: d.dataset?.positives ?? null,
    gate_decision_id: d.gate_decision_id ?? null,
    champion_version: d.champion_version ?? null,
    challenger_version: d.challenger_version ?? null,
  });
}

export type CycleResult =
  | { ran: false; outcome: "not_enough_labels"; reason: string; dataset: BuildSummary | null }
  | { ran: true; reason: string; result: RetrainResult; dataset: BuildSummary };

/**
 * Retrain from what the store holds, no file prepared by a person: build the point-in-time training set over the
 * rolling window (`window_days` of snapshots before `date`, labels `horizon_days` after each), in the champion's
 * own id and target columns, and send it through `retrain` and its gate. Too few labelled churners for the gate to
 * judge (its holdout share must hold `gate.min_positives`) is a decision too: recorded, nothing trained.
 */
export async function retrainFromStore(
  deps: RetrainDeps,
  options: { date: string; trigger: string; dryRun?: boolean | undefined; seed?: number | undefined; holdoutShare?: number | undefined },
): Promise<CycleResult> {
  const settings = deps.config.monitoring.retrain;
  const champion = await loadModel(deps.config, "champion", { fresh: true });
  const schema = champion.bundle.schema;
  await champion.close();
  if (schema.id_column === null) throw new ChurnopsError("bad_input", "the champion's bundle has no id column: a training set needs customer ids");
  let dataset: BuildSummary;
  try {
    dataset = await buildDataset(deps.store, {
      horizonDays: settings.horizon_days,
      from: addDays(options.date, -settings.window_days),
      to: options.date,
      asOf: options.date,
      idColumn: schema.id_column,
      label: { column: schema.target.column, positive: String(schema.target.positive) },
      out: (fingerprint) => join(deps.config.home, "datasets", `${fingerprint}.parquet`),
    });
  } catch (err) {
    if (!(err instanceof ChurnopsError && err.code === "data_not_found")) throw err;
    const reason = `not enough labels yet: ${err.message}`;
    await recordDecision(deps, { date: options.date, trigger: options.trigger, outcome: "not_enough_labels", reason });
    return { ran: false, outcome: "not_enough_labels", reason, dataset: null };
  }
  const share = options.holdoutShare ?? settings.holdout_share;
  const need = deps.config.monitoring.gate.min_positives;
  const expected = Math.floor(dataset.positives * share);
  if (expected < need) {
    const reason = `not enough labels yet: ${dataset.positives} churners labelled in ${dataset.rows} rows (${dataset.left_out.censored} censored), so the holdout would hold about ${expected}; the gate needs ${need}`;
    await recordDecision(deps, { date: options.date, trigger: options.trigger, outcome: "not_enough_labels", reason, dataset });
    deps.log.info({ event: "retrain.not_enough_labels", positives: dataset.positives, rows: dataset.rows, fingerprint: dataset.fingerprint }, reason);
    return { ran: false, outcome: "not_enough_labels", reason, dataset };
  }
  const result = await retrain(deps, {
    data: dataset.out,
    trigger: options.trigger,
    dryRun: options.dryRun,
    seed: options.seed,
    holdoutShare: options.holdoutShare,
    date: options.date,
    dataset,
  });
  return { ran: true, reason: options.trigger, result, dataset };
}

/** Alerts that call for a new model: inputs or scores drifted, or recall fell (realised, or estimated). Not data-quality ones. */
const RETRAIN_RULES: readonly AlertRule[] = ["drift.feature", "drift.score", "performance.recall", "performance.estimated_recall"];

export type RetrainCheck = { ran: false; reason: string } | { ran: true; reason: string; result: RetrainResult };

/**
 * For the daily job: retrain when an alert-severity drift or performance alert fired since the last gate
 * decision (`monitoring.retrain.on_alert`), or when the last decision is older than `every_days`. The labelled
 * data comes from `data` or `monitoring.retrain.data` (`{date}` replaced by `date`); without either, from a
 * point-in-time training set built from the store's snapshots and outcomes (`retrainFromStore`).
 */
export async function retrainIfNeeded(deps: RetrainDeps, options: { date: string; data?: string | undefined; now?: Date }): Promise<RetrainCheck> {
  const settings = deps.config.monitoring.retrain;
  const now = options.now ?? new Date();
  const last = (await listGateDecisions(deps.store, { modelName: deps.config.model_name, limit: 1 }))[0];
  const since = last?.decided_at ?? "0000";
  let trigger: string | null = null;
  if (settings.on_alert) {
    const fired = await listAlerts(deps.store, { since, rules: RETRAIN_RULES, severity: "alert", limit: 1 });
    const alert = fired[0];
    if (alert !== undefined) trigger = `alert:${alert.rule}:${alert.subject}`;
  }
  if (trigger === null && settings.every_days > 0) {
    // The cadence counts the days the jobs were for (a job re-run for a past date sees that date's age), falling back
    // to the wall clock for gate decisions recorded before the retrain history existed.
    const judged = await lastJudged(deps.store, deps.config.model_name);
    const ageDays =
      judged !== undefined
        ? (Date.parse(`${options.date}T00:00:00Z`) - Date.parse(`${judged.date}T00:00:00Z`)) / 86_400_000
        : last === undefined
          ? Number.POSITIVE_INFINITY
          : (now.getTime() - Date.parse(last.decided_at)) / 86_400_000;
    if (ageDays >= settings.every_days) trigger = `schedule:${settings.every_days}d`;
  }
  if (trigger === null)
    return { ran: false, reason: last === undefined ? "no retraining alert has fired" : `no retraining alert since the last decision (${last.decided_at})` };
  const data = (options.data ?? settings.data)?.replaceAll("{date}", options.date);
  try {
    if (data === undefined) {
      const cycle = await retrainFromStore(deps, { date: options.date, trigger });
      return cycle.ran ? { ran: true, reason: trigger, result: cycle.result } : { ran: false, reason: `${trigger} calls for retraining, but ${cycle.reason}` };
    }
    const result = await retrain(deps, { data, trigger, date: options.date });
    return { ran: true, reason: trigger, result };
  } catch (err) {
    // A failed attempt is a decision the history must show too (the daily job goes on scoring with the champion).
    await recordDecision(deps, { date: options.date, trigger, outcome: "failed", reason: (err as Error).message }).catch(() => undefined);
    throw err;
  }
}
