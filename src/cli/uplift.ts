import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { trainerJson } from "../model/trainer.js";
import { exportUpliftData, MIN_CHURNERS_PER_ARM, MIN_ROWS_PER_ARM, type UpliftExportSummary } from "../uplift/data.js";
import { registeredSchema, upliftModelName } from "../uplift/schema.js";
import { type CommandContext, output, parseIntFlag } from "./context.js";

interface TrainResult {
  model_name: string;
  version: string;
  learner: string;
  rows: number;
  bundle_path: string;
  rankings: Record<string, { qini: number; qini_ci95: [number, number]; auuc: number; auuc_ci95: [number, number] }>;
  gate: { promoted: boolean; reason: string } | null;
  held_out: { rows: number; treatment: number; control: number; observed_uplift: number; mean_predicted_uplift: number };
  [key: string]: unknown;
}

function formatTrain(data: UpliftExportSummary, r: TrainResult): string {
  const f = (x: number) => x.toFixed(4);
  return [
    `Trained uplift model ${r.model_name} v${r.version} (${r.learner}) on ${r.rows} randomised members of ${data.campaigns.map((c) => c.campaign).join(", ")}`,
    `  data        treatment ${data.treatment.rows} (${data.treatment.churners} churned), control ${data.control.rows} (${data.control.churners} churned), outcomes within ${data.horizon_days} days`,
    ...data.campaigns.map(
      (c) =>
        `  ${c.campaign.padEnd(11)} ${c.rows} rows; left out ${c.no_outcome} without an outcome yet, ${c.not_in_snapshot} not in the snapshot of ${c.as_of}`,
    ),
    `  held out    ${r.held_out.rows} members: observed uplift ${f(r.held_out.observed_uplift)}, mean predicted ${f(r.held_out.mean_predicted_uplift)}`,
    ...Object.entries(r.rankings).map(
      ([k, v]) => `  qini        ${k.padEnd(7)} ${f(v.qini)} (95% CI ${f(v.qini_ci95[0])} to ${f(v.qini_ci95[1])}), AUUC ${f(v.auuc)}`,
    ),
    ...(r.gate === null ? [] : [`  gate        ${r.gate.reason}${r.gate.promoted ? " → champion" : " → stays challenger"}`]),
    `  bundle      ${r.bundle_path}`,
  ].join("\n");
}

export function registerUplift(program: Command, ctx: () => CommandContext): void {
  const uplift = program.command("uplift").description("learn what an offer changes from past campaigns' control groups (uplift)");
  uplift
    .command("train")
    .description("fit an uplift model on the randomised members of past campaigns, evaluate it against risk targeting, register it")
    .requiredOption("--campaign <names>", "campaigns to learn from, comma-separated")
    .option("--horizon-days <days>", "an outcome counts when observed within this many days after the campaign (default: monitoring.performance.horizon_days)")
    .option("--model-name <name>", "registered name of the uplift model (default: <model_name>-uplift)")
    .option("--min-rows-per-arm <n>", "refuse with fewer members with outcomes per arm", String(MIN_ROWS_PER_ARM))
    .option("--min-churners-per-arm <n>", "refuse with fewer churners (or stayers) per arm", String(MIN_CHURNERS_PER_ARM))
    .option("--seed <n>", "seed of the split, folds and bootstrap", "42")
    .option("--no-register", "track the run but register no version")
    .option("--json", "print JSON")
    .action(
      async (flags: {
        campaign: string;
        horizonDays?: string;
        modelName?: string;
        minRowsPerArm: string;
        minChurnersPerArm: string;
        seed: string;
        register: boolean;
        json?: boolean;
      }) => {
        const c = ctx();
        const campaigns = flags.campaign
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "");
        const minRows = parseIntFlag(flags.minRowsPerArm, "--min-rows-per-arm", 20);
        const minChurners = parseIntFlag(flags.minChurnersPerArm, "--min-churners-per-arm", 5);
        const horizonDays =
          flags.horizonDays === undefined ? c.config.monitoring.performance.horizon_days : parseIntFlag(flags.horizonDays, "--horizon-days", 1, 3650);
        const dir = mkdtempSync(join(tmpdir(), "churnops-uplift-data-"));
        try {
          const data = await exportUpliftData(await c.store(), {
            campaigns,
            horizonDays,
            out: join(dir, "uplift.parquet"),
            modelSchema: registeredSchema(c.config),
            minRowsPerArm: minRows,
            minChurnersPerArm: minChurners,
          });
          const result = await trainerJson<TrainResult>(
            c.config,
            [
              "uplift-train",
              "--data",
              data.out,
              "--model-name",
              upliftModelName(c.config, flags.modelName),
              "--campaigns",
              campaigns.join(","),
              "--min-rows-per-arm",
              String(minRows),
              "--min-churners-per-arm",
              String(minChurners),
              "--seed",
              String(parseIntFlag(flags.seed, "--seed", 0)),
              ...(flags.register ? [] : ["--no-register"]),
            ],
            { showProgress: flags.json !== true },
          );
          c.log.info({ event: "uplift.trained", model: result.model_name, version: result.version, rows: result.rows }, "uplift model trained");
          output(flags.json === true, { data: { ...data, out: undefined }, ...result }, () => formatTrain(data, result));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
}
