import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
import type { ModelEvaluation } from "../monitoring/gate.js";
import { type RetrainResult, retrain, retrainFromStore } from "../monitoring/retrain.js";
import { type RetrainDecision, retrainHistory } from "../store/datasets.js";
import { type CommandContext, output, parseIntFlag, today } from "./context.js";

const num = (v: number | null): string => (v === null ? "-" : v.toFixed(3));

function evalLine(label: string, e: ModelEvaluation): string {
  return `  ${label.padEnd(12)}v${e.version.padEnd(7)}threshold ${e.threshold.toFixed(4)}  recall ${num(e.recall)}  precision ${num(e.precision)}  ROC AUC ${num(e.roc_auc)}`;
}

export function formatRetrain(r: RetrainResult): string {
  return [
    r.trained === null
      ? `Judged challenger v${r.challenger.version} (${r.trigger}).`
      : `Trained challenger v${r.trained.version} on ${r.trained.train_path} (${r.trigger}).`,
    `Holdout: ${r.holdout.rows} customers (${r.challenger.positives} churned) from ${r.holdout.path}${r.holdout.excluded > 0 ? `; ${r.holdout.excluded} rows left out` : ""}`,
    evalLine("champion", r.champion),
    evalLine("challenger", r.challenger),
    ...r.checks.map((c) => `  ${c.passed ? "pass" : "FAIL"}  ${c.name.padEnd(26)}${c.detail}`),
    `Decision: ${r.decision.toUpperCase()} — ${r.reason}${r.promoted ? ` (champion is now v${r.challenger.version}; \`churnops rollback\` restores v${r.champion.version})` : ""}`,
  ].join("\n");
}

interface RetrainFlags {
  data?: string;
  challenger?: string;
  dryRun?: boolean;
  seed?: string;
  holdoutShare?: string;
  history?: boolean;
  limit: string;
  json?: boolean;
}

export function formatHistory(decisions: readonly RetrainDecision[]): string {
  if (decisions.length === 0) return "No retrain decisions yet.";
  return decisions
    .map((d) => {
      const models = d.challenger_version === null ? "" : ` v${d.challenger_version} vs v${d.champion_version}`;
      const data = d.dataset_fingerprint === null ? "" : ` [set ${d.dataset_fingerprint.slice(0, 12)}: ${d.dataset_rows} rows, ${d.dataset_positives} churned]`;
      return `${d.decided_at.slice(0, 19)}  ${d.date}  ${d.outcome.padEnd(18)} ${d.trigger}${models}${data}\n    ${d.reason}`;
    })
    .join("\n");
}

export function registerRetrain(program: Command, ctx: () => CommandContext): void {
  program
    .command("retrain")
    .description("train a challenger on recent labelled customers, judge it against the champion on a holdout, promote it if it wins the gate")
    .option(
      "--data <file>",
      "labelled customers (CSV/Parquet with the model's features, id and target); default: monitoring.retrain.data, else a point-in-time set built from the store",
    )
    .option("--challenger <ref>", "judge this version (or bundle directory) instead of training one")
    .option("--dry-run", "decide and record, but do not promote")
    .option("--seed <n>", "seed of the holdout split and of training")
    .option("--holdout-share <x>", "share of customers kept out of training to judge both models")
    .option("--history", "list the recorded retrain decisions instead (not enough labels, refused, promoted, failed)")
    .option("--limit <n>", "with --history: how many", "50")
    .option("--json", "print JSON")
    .action(async (flags: RetrainFlags) => {
      const c = ctx();
      const store = await c.store();
      if (flags.history === true) {
        const decisions = await retrainHistory(store, { modelName: c.config.model_name, limit: parseIntFlag(flags.limit, "--limit", 1, 10_000) });
        output(flags.json === true, decisions, () => formatHistory(decisions));
        return;
      }
      const data = flags.data ?? c.config.monitoring.retrain.data;
      const seed = flags.seed === undefined ? undefined : Number(flags.seed);
      const share = flags.holdoutShare === undefined ? undefined : Number(flags.holdoutShare);
      if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0))
        throw new ChurnopsError("bad_input", `--seed ${flags.seed}: expected a whole number`, { field: "seed" });
      if (share !== undefined && !(share > 0 && share < 1))
        throw new ChurnopsError("bad_input", `--holdout-share ${flags.holdoutShare}: expected a number between 0 and 1`, { field: "holdout-share" });
      const deps = { store, config: c.config, log: c.log };
      if (data === undefined) {
        if (flags.challenger !== undefined)
          throw new ChurnopsError("bad_input", "--challenger needs --data (or monitoring.retrain.data): the holdout to judge it on", { field: "data" });
        const cycle = await retrainFromStore(deps, { date: today(), trigger: "manual", dryRun: flags.dryRun, seed, holdoutShare: share });
        if (!cycle.ran) throw new ChurnopsError("bad_input", `${cycle.reason} (give --data FILE to retrain from a labelled file)`, { field: "data" });
        output(flags.json === true, cycle.result, () => formatRetrain(cycle.result));
        return;
      }
      const result = await retrain(deps, {
        data: data.replaceAll("{date}", new Date().toISOString().slice(0, 10)),
        trigger: "manual",
        challenger: flags.challenger,
        dryRun: flags.dryRun,
        seed,
        holdoutShare: share,
      });
      output(flags.json === true, result, () => formatRetrain(result));
    });
}
