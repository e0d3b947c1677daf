import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
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

export function registerReport(program: Command, ctx: () => CommandContext): void {
  program
    .command("report")
    .description("print the path of the latest training report (HTML with plots)")
    .option("--json", "print JSON")
    .action((flags: { json?: boolean }) => {
      const c = ctx();
      const path = latestReport(c.config.home);
      if (path === null) throw new ChurnopsError("not_found", `no training report under ${join(c.config.home, "reports")} yet (run \`churnops train …\`)`);
      output(flags.json === true, { report: path }, () => path);
    });
}
