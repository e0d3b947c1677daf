import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
import { applyPrune, keepsEverything, type PrunePlan, planPrune, retentionPolicy } from "../store/retention.js";
import { type CommandContext, output, parseDate, parseIntFlag, today } from "./context.js";
import { table } from "./format.js";

interface PruneFlags {
  keepDaily?: string;
  keepMonthly?: string;
  keepPredictions?: string;
  today?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function formatPlan(plan: PrunePlan, dryRun: boolean): string {
  const verb = dryRun ? "Would prune" : "Pruned";
  const lines: string[] = [];
  const scores = plan.prune.reduce((n, r) => n + r.scores, 0);
  lines.push(plan.prune.length === 0 ? "No run's scores are old enough to prune." : `${verb} the scores of ${plan.prune.length} runs (${scores} scores):`);
  if (plan.prune.length > 0)
    lines.push(
      table(
        ["RUN", "KIND", "AS OF", "SCORES"],
        plan.prune.map((r) => [r.run_id, r.kind, r.as_of, String(r.scores)]),
      ),
    );
  if (plan.kept.length > 0) {
    lines.push(`Kept ${plan.kept.length} runs old enough to prune:`);
    lines.push(
      table(
        ["RUN", "AS OF", "WHY"],
        plan.kept.map((r) => [r.run_id, r.as_of, r.reason]),
      ),
    );
  }
  if (plan.predictions !== null) lines.push(`${verb} ${plan.predictions.rows} API predictions logged before ${plan.predictions.before}.`);
  return lines.join("\n");
}

export function registerPrune(program: Command, ctx: () => CommandContext): void {
  program
    .command("prune")
    .description("remove old runs' scores and old API predictions, keeping what campaigns, alerts and monitoring still need")
    .option("--keep-daily <days>", "keep daily runs' scores this many days (default: [retention] daily_days)")
    .option("--keep-monthly <months>", "keep monthly runs' scores this many months (default: [retention] monthly_months)")
    .option("--keep-predictions <days>", "keep API predictions this many days (default: [retention] predictions_days)")
    .option("--today <date>", "the day retention counts back from (YYYY-MM-DD; default: today, UTC)")
    .option("--dry-run", "say what would be removed and kept, and remove nothing")
    .option("--json", "print JSON")
    .action(async (flags: PruneFlags) => {
      const c = ctx();
      const day = flags.today === undefined ? today() : parseDate(flags.today, "--today");
      const limit = (value: string | undefined, flag: string, max: number) => (value === undefined ? undefined : parseIntFlag(value, flag, 0, max));
      const policy = retentionPolicy(c.config.retention, c.config.monitoring.performance.horizon_days, day, {
        keepDailyDays: limit(flags.keepDaily, "--keep-daily", 36_500),
        keepMonthlyMonths: limit(flags.keepMonthly, "--keep-monthly", 1200),
        keepPredictionsDays: limit(flags.keepPredictions, "--keep-predictions", 36_500),
      });
      if (keepsEverything(policy))
        throw new ChurnopsError(
          "bad_input",
          "nothing to prune: give --keep-daily DAYS, --keep-monthly MONTHS or --keep-predictions DAYS, or set them in [retention] of the config",
          { field: "keep-daily" },
        );
      const store = await c.store();
      const plan = await planPrune(store, policy);
      const removed = flags.dryRun === true ? null : await applyPrune(store, plan);
      output(flags.json === true, { dryRun: flags.dryRun === true, policy, ...plan, removed }, () => formatPlan(plan, flags.dryRun === true));
    });
}
