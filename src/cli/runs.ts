import type { Command } from "commander";
import { chosenRun, listRuns, quarantined, resolveRun } from "../store/runs.js";
import { type CommandContext, output, parseIntFlag } from "./context.js";
import { table } from "./format.js";

export function registerRuns(program: Command, ctx: () => CommandContext): void {
  program
    .command("runs")
    .description("list recent score runs")
    .option("--limit <n>", "how many", "20")
    .option("--json", "print JSON")
    .action(async (flags: { limit: string; json?: boolean }) => {
      const c = ctx();
      const runs = await listRuns(await c.store(), parseIntFlag(flags.limit, "--limit", 1, 10_000));
      output(flags.json === true, runs, () =>
        runs.length === 0
          ? "No score runs yet."
          : table(
              ["RUN", "STATUS", "MODEL", "SCORED", "QUARANTINED", "STARTED", "SOURCE"],
              runs.map((r) => [
                r.run_id,
                r.pruned_at !== null ? `${r.status}, pruned` : r.replaces === null ? r.status : `${r.status} (re-run of ${r.replaces})`,
                `${r.model_name} v${r.model_version}`,
                String(r.rows_scored),
                String(r.rows_quarantined),
                r.started_at,
                r.source,
              ]),
            ),
      );
    });

  program
    .command("quarantine")
    .description("show the rows of a score run that were not scored, with the reason")
    .argument("<run>", "a run id, or `latest` (the most recently finished run, complete or failed)")
    .option("--limit <n>", "how many rows", "50")
    .option("--json", "print JSON")
    .action(async (runRef: string, flags: { limit: string; json?: boolean }) => {
      const c = ctx();
      const store = await c.store();
      // A failed run is the one whose quarantine people most want to see (every row refused).
      const run = await resolveRun(store, runRef, { statuses: ["complete", "failed"] });
      const rows = await quarantined(store, run.run_id, parseIntFlag(flags.limit, "--limit", 1, 1_000_000));
      const chosen = chosenRun(runRef, run);
      output(flags.json === true, { run_id: run.run_id, status: run.status, total: run.rows_quarantined, rows }, () =>
        rows.length === 0
          ? `${capitalised(chosen)}: no quarantined rows.`
          : [
              `${capitalised(chosen)}: ${run.rows_quarantined} quarantined rows`,
              ...rows.map((r) => `  row ${r.row_number} (${r.customer_id ?? "no id"}): ${r.reason}`),
            ].join("\n"),
      );
    });
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
