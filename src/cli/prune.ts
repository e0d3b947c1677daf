import type { Command } from "commander";
import type { RetentionConfig } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { applyPrune, type PrunePlan, planPrune, type RetentionPolicy } from "../store/retention.js";
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

/** The policy from the flags, each falling back to `[retention]` (0 there means keep forever). */
export function retentionPolicy(config: RetentionConfig, horizonDays: number, day: string, flags: PruneFlags = {}): RetentionPolicy {
  const pick = (flag: string | undefined, name: string, configured: number, max: number): number | null => {
    if (flag !== undefined) return parseIntFlag(flag, name, 0, max);
    return configured > 0 ? configured : null;
  };
  return {
    keepDailyDays: pick(flags.keepDaily, "--keep-daily", config.daily_days, 36_500),
    keepMonthlyMonths: pick(flags.keepMonthly, "--keep-monthly", config.monthly_months, 1200),
    keepPredictionsDays: pick(flags.keepPredictions, "--keep-predictions", config.predictions_days, 36_500),
    horizonDays,
    alertOpenDays: config.alert_open_days,
    today: day,
  };
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
      const policy = retentionPolicy(c.config.retention, c.config.monitoring.performance.horizon_days, day, flags);
      if (policy.keepDailyDays === null && policy.keepMonthlyMonths === null && policy.keepPredictionsDays === null)
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
