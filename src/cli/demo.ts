import type { Command } from "commander";
import { consoleDemoHint } from "../console/demo-hint.js";
import { runDemo, type TestMetrics, type TrainResult } from "../pipeline/demo.js";
import { redactUrl } from "../redact.js";
import { formatPlan, formatSend } from "./campaign.js";
import { type CommandContext, output, parseIntFlag, today } from "./context.js";
import { describeBands, table } from "./format.js";
import { formatSummary } from "./score.js";

function metricsTable(train: TrainResult): string {
  const rows: [string, TestMetrics][] = [[`LightGBM (v${train.version})`, train.metrics.test]];
  for (const [name, b] of Object.entries(train.baselines)) rows.push([name.replaceAll("_", " "), b.test]);
  return table(
    ["model", "ROC AUC", "recall", "precision", "accuracy", "brier"],
    rows.map(([n, m]) => [n, ...[m.roc_auc, m.recall, m.precision, m.accuracy, m.brier].map((x) => x.toFixed(3))]),
  );
}

export function registerDemo(program: Command, ctx: () => CommandContext): void {
  program
    .command("demo")
    .description("synthesize customers, train, promote, score everyone, show the top-risk customers, and run a campaign")
    .option("--rows <n>", "synthetic customers", "20000")
    .option("--seed <n>", "seed for the synthetic data", "7")
    .option("--json", "print JSON")
    .action(async (flags: { rows: string; seed: string; json?: boolean }) => {
      const c = ctx();
      const r = await runDemo({
        config: c.config,
        store: await c.store(),
        rows: parseIntFlag(flags.rows, "--rows", 500, 10_000_000),
        seed: parseIntFlag(flags.seed, "--seed", 0),
        asOf: today(),
        log: c.log,
        onStep: flags.json === true ? undefined : (line) => process.stderr.write(`\n== ${line}\n`),
      });
      const result = { ...r, report: r.train.report_path ?? null, store: redactUrl(c.config.store_url), home: c.config.home };
      output(flags.json === true, result, () =>
        [
          "",
          "Model quality on the held-out 20% test split (never seen during selection):",
          metricsTable(r.train),
          `Operating threshold ${r.train.threshold.toFixed(3)} (highest precision with recall ≥ target on cross-validation).`,
          "",
          formatSummary(r.score),
          `  cut-offs     ${describeBands(r.bands)}`,
          "",
          "Top-risk customers:",
          table(
            ["customer", "probability", "band"],
            r.top.map((s) => [s.customer_id, s.probability.toFixed(3), s.band]),
          ),
          "",
          formatPlan(r.campaign.plan, false),
          formatSend(r.campaign.send),
          `Measure it once outcomes arrive: churnops outcomes ingest FILE && churnops campaign report ${r.campaign.plan.campaign.name}`,
          "",
          `Training report: ${r.train.report_path ?? "(none)"}`,
          `Store:           ${redactUrl(c.config.store_url)}`,
          `Data folder:     ${c.config.home}`,
          "",
          consoleDemoHint(),
        ].join("\n"),
      );
    });
}
