import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { importOptOuts } from "../campaigns/ingest.js";
import type { PlanResult } from "../campaigns/plan.js";
import type { SendSummary } from "../campaigns/send.js";
import { batchRuntime, type Config } from "../config.js";
import { openSource } from "../data/source.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Band } from "../model/bundle.js";
import { loadModel } from "../model/registry.js";
import { runTrainer, syntheticTrainArgs, trainerJson } from "../model/trainer.js";
import { type BatchSummary, scoreBatch } from "../scoring/batch.js";
import type { Store } from "../store/db.js";
import { type ScoreRow, topScores } from "../store/runs.js";
import { planAndSend } from "./campaign.js";

export interface TestMetrics {
  roc_auc: number;
  pr_auc: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  brier: number;
}

/** What the trainer's `train --json` reports (the fields the demo shows). */
export interface TrainResult {
  model_name: string;
  version: string | number;
  run_id: string;
  bundle_path: string;
  report_path?: string;
  threshold: number;
  metrics: { test: TestMetrics; cv: { roc_auc: number } };
  baselines: Record<string, { test: TestMetrics }>;
}

export interface DemoOptions {
  config: Config;
  store: Store;
  rows: number;
  seed: number;
  /** The date the demo's scores are for. */
  asOf: string;
  log: Logger;
  /** Called as each step starts, with its one-line description. */
  onStep?: ((line: string) => void) | undefined;
}

export interface DemoResult {
  data: string;
  train: TrainResult;
  score: BatchSummary;
  /** The champion's bands, highest first, with their cut-offs. */
  bands: readonly Band[];
  top: ScoreRow[];
  campaign: { plan: PlanResult; send: SendSummary };
}

/** Where the demo writes its synthetic customers (examples/churnops.toml's daily.data names the default one). */
export function demoDataPath(home: string, rows: number, seed: number): string {
  return join(home, "demo", `customers-${rows}-${seed}.parquet`);
}

/**
 * The whole job on embedded defaults: synthesize customers → train (with baselines) → promote → score everyone →
 * a retention campaign for the high band (500 offers, ranked by expected value when the data has customer values,
 * with a control group) exported to a CRM file. Needs no server: SQLite store, local MLflow store.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { config, store } = options;
  const step = options.onStep ?? (() => undefined);
  const dir = join(config.home, "demo");
  mkdirSync(dir, { recursive: true });
  const data = demoDataPath(config.home, options.rows, options.seed);

  step(`1/5 synthesizing ${options.rows} customers (seed ${options.seed}) → ${data}`);
  const synth = await runTrainer(config, ["synth", "--rows", String(options.rows), "--seed", String(options.seed), "--out", data], { showProgress: true });
  if (synth.code !== 0) throw new ChurnopsError("trainer_failed", "synthesizing the demo customers failed (see above)");

  step("2/5 training LightGBM with cross-validation, against the logistic baseline and the original recipe");
  const train = await trainerJson<TrainResult>(config, [...syntheticTrainArgs(data), "--model-name", config.model_name], { showProgress: true });

  step(`3/5 promoting v${train.version} to champion`);
  await trainerJson(config, ["promote", "--model-name", config.model_name, "--version", String(train.version)]);

  step("4/5 scoring every customer with the champion");
  const model = await loadModel(config, "champion", batchRuntime(config));
  let score: BatchSummary;
  const bands = model.bundle.bands;
  try {
    score = await scoreBatch({
      source: { data },
      model,
      kind: "daily",
      asOf: options.asOf,
      store,
      chunkSize: config.scoring.chunk_size,
      badRows: "quarantine",
      log: options.log,
    });
  } finally {
    await model.close();
  }
  const top = await topScores(store, score.runId, 10);

  step("5/5 a retention campaign for the high-risk band, with a control group, sent to a CRM export file");
  const source = await openSource({ data });
  const columns = source.columns;
  await source.close();
  if (columns.includes("opted_out")) await importOptOuts(store, { data }, "customer_id", "opted_out");
  const name = `demo-${score.runId}`;
  const campaign = await planAndSend(
    store,
    config,
    {
      name,
      run: score.runId,
      rule: { kind: "band", band: bands[0]?.name ?? "high" },
      budget: 500,
      controlShare: config.campaigns.control_share,
      cooldownDays: config.campaigns.cooldown_days,
      offer: "DEMO-20-OFF",
      values: columns.includes("customer_value")
        ? { source: { data }, idColumn: "customer_id", valueColumn: "customer_value", offerCost: 20, offerSuccess: 0.3 }
        : undefined,
      modelBands: async () => bands,
    },
    { export: join(dir, "exports", `${name}.jsonl`) },
    { log: options.log },
  );
  options.log.info(
    { event: "demo.campaign", campaign: name, treated: campaign.send.treated, control: campaign.send.control, target: campaign.send.target },
    "demo campaign sent",
  );
  return { data, train, score, bands, top, campaign };
}
