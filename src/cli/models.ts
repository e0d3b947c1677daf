import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
import { listVersions, promoteVersion, rollbackChampion } from "../model/registry.js";
import type { RegisteredVersion } from "../model/registry-cache.js";
import { runTrainer, trainerErrorMessage } from "../model/trainer.js";
import { type CommandContext, output } from "./context.js";

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? "-" : v.toFixed(3));

export function formatModels(versions: readonly RegisteredVersion[]): string {
  if (versions.length === 0) return "No registered model versions yet (run `churnops train …`).";
  const rows = versions.map((v) =>
    [
      String(v.version).padEnd(8),
      (v.aliases.join(",") || "-").padEnd(22),
      fmt(v.metrics.roc_auc).padEnd(8),
      fmt(v.metrics.recall).padEnd(8),
      fmt(v.metrics.precision).padEnd(10),
      fmt(v.metrics.accuracy).padEnd(9),
      fmt(v.threshold).padEnd(10),
      v.created_at.padEnd(22),
      (v.data_fingerprint ?? "-").slice(0, 12).padEnd(14),
      (v.schema_summary ?? "-").padEnd(40),
      v.data_source ?? "-",
    ].join(""),
  );
  return [
    `${"version".padEnd(8)}${"aliases".padEnd(22)}${"roc_auc".padEnd(8)}${"recall".padEnd(8)}${"precision".padEnd(10)}${"accuracy".padEnd(9)}${"threshold".padEnd(10)}${"created".padEnd(22)}${"fingerprint".padEnd(14)}${"schema".padEnd(40)}data`,
    ...rows,
  ].join("\n");
}

export function registerModels(program: Command, ctx: () => CommandContext): void {
  program
    .command("models")
    .description("list registered model versions with their aliases and headline test metrics")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const c = ctx();
      const versions = await listVersions(c.config);
      output(flags.json === true, versions, () => formatModels(versions));
    });

  program
    .command("promote")
    .description("make a version the champion (default: the current challenger)")
    .option("--version <n>", "registered version to promote")
    .option("--force", "promote even if its input columns differ from the champion's")
    .option("--json", "print JSON")
    .action(async (flags: { version?: string; force?: boolean; json?: boolean }) => {
      const c = ctx();
      const result = await promoteVersion(c.config, { version: flags.version, force: flags.force === true });
      output(flags.json === true, result, () => `champion is now ${c.config.model_name} v${String(result.version ?? "?")}`);
    });

  program
    .command("rollback")
    .description("restore the previous champion")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const c = ctx();
      const result = await rollbackChampion(c.config);
      output(flags.json === true, result, () => `champion is back to ${c.config.model_name} v${String(result.version ?? "?")}`);
    });
}

/**
 * Commands that belong to the Python trainer (`churnops train …`, `churnops synth …`): the arguments go
 * through unchanged and the trainer talks to the terminal itself.
 */
export const TRAINER_PASSTHROUGH = ["train", "synth", "evaluate", "verify"] as const;

export async function passThrough(ctx: CommandContext, command: string, args: readonly string[]): Promise<number> {
  const res = await runTrainer(ctx.config, [command, ...args], { passthrough: true });
  if (res.code !== 0 && res.stderr !== "") throw new ChurnopsError("trainer_failed", trainerErrorMessage(res.stderr), { exitCode: res.code });
  return res.code;
}
