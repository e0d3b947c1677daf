import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
import { resolveBundle } from "../model/registry.js";
import { type CommandContext, output } from "./context.js";

/** The newest training report under <home>/reports/<run>/report.html. */
export function latestReport(home: string): string | null {
  const dir = join(home, "reports");
  if (!existsSync(dir)) return null;
  const reports = readdirSync(dir)
    .map((run) => join(dir, run, "report.html"))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return reports[0] ?? null;
}

/** The training report of a registered version: the one its run wrote under <home>/reports/<run>/. */
export async function versionReport(config: CommandContext["config"], version: string): Promise<string> {
  if (!/^\d+$/.test(version)) throw new ChurnopsError("bad_input", `--version must be a registered version number, got ${version}`, { field: "version" });
  const resolved = await resolveBundle(config, version);
  const path = join(config.home, "reports", resolved.runId ?? "", "report.html");
  if (resolved.runId === null || !existsSync(path)) {
    throw new ChurnopsError(
      "not_found",
      `the report of ${config.model_name} v${version} (run ${resolved.runId ?? "?"}) is not under ${join(config.home, "reports")}`,
    );
  }
  return path;
}

export function registerReport(program: Command, ctx: () => CommandContext): void {
  program
    .command("report")
    .description("print the path of a training report (HTML with plots): the latest, or a registered version's")
    .option("--version <n>", "the registered version whose report to show")
    .option("--json", "print JSON")
    .action(async (flags: { version?: string; json?: boolean }) => {
      const c = ctx();
      const path = flags.version === undefined ? latestReport(c.config.home) : await versionReport(c.config, flags.version);
      if (path === null) throw new ChurnopsError("not_found", `no training report under ${join(c.config.home, "reports")} yet (run \`churnops train …\`)`);
      output(flags.json === true, { report: path }, () => path);
    });
}
