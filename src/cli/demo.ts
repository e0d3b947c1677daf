import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { batchRuntime } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { loadModel } from "../model/registry.js";
import { runTrainer, syntheticTrainArgs, trainerJson } from "../model/trainer.js";
import { redactUrl } from "../redact.js";
import { scoreBatch } from "../scoring/batch.js";
import { topScores } from "../store/runs.js";
import { demoCampaign } from "./campaign.js";
import { type CommandContext, output, parseIntFlag, today } from "./context.js";
import { formatSummary } from "./score.js";

interface TestMetrics {
  roc_auc: number;
  pr_auc: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  brier: number;
}

interface TrainResult {
  model_name: string;
  version: string | number;
  run_id: string;
  bundle_path: string;
  report_path?: string;
  threshold: number;
  metrics: { test: TestMetrics; cv: { roc_auc: number } };
  baselines: Record<string, { test: TestMetrics }>;
}

function metricsTable(train: TrainResult): string {
  const rows: [string, TestMetrics][] = [[`LightGBM (v${train.version})`, train.metrics.test]];
  for (const [name, b] of Object.entries(train.baselines)) rows.push([name.replaceAll("_", " "), b.test]);
  const head = `${"model".padEnd(22)}${"ROC AUC".padEnd(9)}${"recall".padEnd(8)}${"precision".padEnd(11)}${"accuracy".padEnd(10)}brier`;
  return [
    head,
    ...rows.map(
      ([n, m]) =>
        `${n.padEnd(22)}${m.roc_auc.toFixed(3).padEnd(9)}${m.recall.toFixed(3).padEnd(8)}${m.precision.toFixed(3).padEnd(11)}${m.accuracy.toFixed(3).padEnd(10)}${m.brier.toFixed(3)}`,
    ),
  ].join("\n");
}

/**
 * The whole job on embedded defaults: synthesize customers → train (with baselines) → promote → score
 * everyone → show who is most at risk. Needs no server: SQLite store, local MLflow store.
 */
export function registerDemo(program: Command, ctx: () => CommandContext): void {
  program
    .command("demo")
    .description("synthesize customers, train, promote, score everyone, and show the top-risk customers")
    .option("--rows <n>", "synthetic customers", "20000")
    .option("--seed <n>", "seed for the synthetic data", "7")
    .option("--json", "print JSON")
    .action(async (flags: { rows: string; seed: string; json?: boolean }) => {
      const c = ctx();
      const rows = parseIntFlag(flags.rows, "--rows", 500, 10_000_000);
      const seed = parseIntFlag(flags.seed, "--seed", 0);
      const dir = join(c.config.home, "demo");
      mkdirSync(dir, { recursive: true });
      const data = join(dir, `customers-${rows}-${seed}.parquet`);
      const say = (line: string): void => {
        if (flags.json !== true) process.stderr.write(`\n== ${line}\n`);
      };

      say(`1/4 synthesizing ${rows} customers (seed ${seed}) → ${data}`);
      const synth = await runTrainer(c.config, ["synth", "--rows", String(rows), "--seed", String(seed), "--out", data], { showProgress: true });
      if (synth.code !== 0) throw new ChurnopsError("trainer_failed", "synthesizing the demo customers failed (see above)");

      say("2/4 training LightGBM with cross-validation, against the logistic baseline and the original recipe");
      const train = await trainerJson<TrainResult>(c.config, [...syntheticTrainArgs(data), "--model-name", c.config.model_name], { showProgress: true });

      say(`3/4 promoting v${train.version} to champion`);
      await trainerJson(c.config, ["promote", "--model-name", c.config.model_name, "--version", String(train.version)]);

      say("4/4 scoring every customer with the champion");
      const model = await loadModel(c.config, "champion", batchRuntime(c.config));
      const store = await c.store();
      const summary = await scoreBatch({
        source: { data },
        model,
        kind: "daily",
        asOf: today(),
        store,
        chunkSize: c.config.scoring.chunk_size,
        badRows: "quarantine",
        log: c.log,
      });
      await model.close();
      const top = await topScores(store, summary.runId, 10);

      const result = { train, score: summary, top, report: train.report_path ?? null, store: redactUrl(c.config.store_url), home: c.config.home };
      output(flags.json === true, result, () =>
        [
          "",
          "Model quality on the held-out 20% test split (never seen during selection):",
          metricsTable(train),
          `Operating threshold ${train.threshold.toFixed(3)} (highest precision with recall ≥ target on cross-validation).`,
          "",
          formatSummary(summary),
          "",
          "Top-risk customers:",
          ...top.map((s) => `  ${s.customer_id.padEnd(14)} ${s.probability.toFixed(3)}  ${s.band}`),
          "",
          `Training report: ${train.report_path ?? "(none)"}`,
          `Store:           ${redactUrl(c.config.store_url)}`,
          `Data folder:     ${c.config.home}`,
        ].join("\n"),
      );

      say("then: a retention campaign for the high-risk band, with a control group, sent to a CRM export file");
      const campaign = await demoCampaign(c, summary.runId, data);
      c.log.info(
        {
          event: "demo.campaign",
          campaign: campaign.plan.campaign.name,
          treated: campaign.send.treated,
          control: campaign.send.control,
          target: campaign.send.target,
        },
        "demo campaign sent",
      );
      if (flags.json !== true) process.stdout.write(`\n${campaign.text}\n`);
    });
}
