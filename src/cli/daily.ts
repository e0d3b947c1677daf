import type { Command } from "commander";
import { batchRuntime } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { loadModel } from "../model/registry.js";
import { type DailySummary, runDaily, snapshotFor } from "../pipeline/daily.js";
import { getDailyRun, listDailyRuns } from "../store/daily.js";
import { deliveryFailures } from "./campaign.js";
import { type CommandContext, output, parseDate, parseIntFlag, today } from "./context.js";
import { describeBands, table } from "./format.js";
import { batchProgress } from "./progress.js";

interface DailyFlags {
  date?: string;
  data?: string;
  table?: string;
  model?: string;
  json?: boolean;
}

const num = (v: number | null): string => (v === null ? "-" : v.toFixed(3));

export function formatDaily(s: DailySummary): string {
  const bands = Object.entries(s.score.bands)
    .map(([band, n]) => `${band} ${n}`)
    .join(", ");
  const lines = [
    `Daily job ${s.date} (${s.kind} run, attempt ${s.attempt}) finished in ${(s.durationMs / 1000).toFixed(1)} s.`,
    `  scores      ${s.score.runId}: ${s.score.status === "already_complete" ? "already complete, nothing re-scored" : `${s.score.rowsScored} scored`}, ${s.score.rowsQuarantined} quarantined (${bands || "-"})`,
  ];
  if (s.modelBands !== undefined) lines.push(`  bands       ${describeBands(s.modelBands)}`);
  if (s.snapshot !== undefined && s.snapshot !== null)
    lines.push(
      `  snapshot    ${s.snapshot.kept ? `kept ${s.snapshot.path} (${s.snapshot.rows} rows${s.snapshot.already ? ", kept before" : ""})` : `not kept: ${"error" in s.snapshot ? s.snapshot.error : s.snapshot.reason}`}`,
    );
  if (s.optOuts !== null) lines.push(`  opt-outs    ${s.optOuts.optedOut} in the snapshot's ${s.optOuts.column} column, ${s.optOuts.added} new`);
  for (const c of s.campaigns) {
    const states = Object.entries(c.send.states)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    lines.push(
      `  campaign    ${c.name}: ${c.plan.status === "planned" ? "planned" : "already planned"}, treated ${c.plan.treated}, control ${c.plan.control}; ${c.send.delivered} delivered now via ${c.send.adapter} (${states || "no messages"})`,
    );
  }
  if (s.review !== null) {
    const changes = Object.entries(s.review.bands)
      .map(([band, b]) => `${band} ${b.now}${b.change === null ? "" : ` (${b.change >= 0 ? "+" : ""}${b.change})`}`)
      .join(", ");
    lines.push(`  risk review ${s.review.json}`);
    lines.push(`              bands vs last month: ${changes}${s.review.previousRunId === null ? " (no earlier monthly run)" : ""}`);
    lines.push(`              top-risk customers: ${s.review.topRiskCsv}`);
  }
  if (s.watch !== null) {
    const w = s.watch;
    lines.push(
      `  drift       ${"error" in w.drift ? `failed: ${w.drift.error}` : `${w.drift.severity}${w.drift.drifted.length > 0 ? ` (${w.drift.drifted.join(", ")})` : ""}, ${w.drift.alerts} new alert(s)`}`,
    );
    lines.push(
      `  estimate    ${"error" in w.estimate ? `failed: ${w.estimate.error}` : `${w.estimate.status}: recall ${num(w.estimate.recall)}, ROC AUC ${num(w.estimate.roc_auc)} (before labels), ${w.estimate.alerts} new alert(s)`}`,
    );
    lines.push(
      `  performance ${"error" in w.performance ? `failed: ${w.performance.error}` : `${w.performance.reports} report(s), ${w.performance.alerts} new alert(s)`}`,
    );
    lines.push(
      `  retrain     ${"error" in w.retrain ? `failed: ${w.retrain.error}` : w.retrain.ran ? `ran (${w.retrain.reason})` : `not needed: ${w.retrain.reason}`}`,
    );
    if (w.metricsTextfile !== null) lines.push(`  metrics     ${w.metricsTextfile}`);
  }
  const r = s.retention;
  if (r !== null && r !== undefined)
    lines.push(
      `  retention   ${"error" in r ? `failed: ${r.error}` : `pruned ${r.scores} scores of ${r.runs} run(s) and ${r.predictions} predictions; kept ${r.kept} old run(s) still needed`}`,
    );
  return lines.join("\n");
}

export function registerDaily(program: Command, ctx: () => CommandContext): void {
  program
    .command("daily")
    .description("the daily job: score the day's snapshot, plan and send the configured campaigns, monthly risk review")
    .option("--date <date>", "the day to run for (YYYY-MM-DD; default today)")
    .option("--data <file|url>", "the day's customer snapshot (default: daily.data from the config; {date} is replaced)")
    .option("--table <name>", "table to read when the snapshot is a database URL")
    .option("--model <ref>", "model to score with (default: daily.model, champion)")
    .option("--json", "print the summary as JSON")
    .action(async (flags: DailyFlags) => {
      const c = ctx();
      const date = parseDate(flags.date ?? today(), "--date");
      const template = flags.data ?? c.config.daily.data;
      if (template === undefined)
        throw new ChurnopsError("bad_input", "which snapshot? give --data FILE|URL or set daily.data in the config", { field: "data" });
      const progress = batchProgress(c.log, "daily scoring");
      try {
        const summary = await runDaily({
          config: c.config,
          store: await c.store(),
          date,
          data: { data: snapshotFor(template, date), table: flags.table ?? c.config.daily.table },
          loadModel: () => loadModel(c.config, flags.model ?? c.config.daily.model, batchRuntime(c.config)),
          log: c.log,
          onProgress: progress.update,
        });
        progress.stop();
        c.log.info({ event: "daily.done", date, kind: summary.kind, attempt: summary.attempt }, "daily job finished");
        output(flags.json === true, summary, () => formatDaily(summary));
        const failures = summary.campaigns.flatMap((campaign) => deliveryFailures(campaign.name, campaign.send.failures));
        if (failures.length > 0) c.fail(failures);
      } finally {
        progress.stop();
      }
    });
}

/** What the store keeps of past daily jobs: a list, and one day's summary as the job printed it. */
export function registerDailyHistory(program: Command, ctx: () => CommandContext): void {
  program
    .command("daily-runs")
    .description("list recent daily jobs: date, kind, status, attempts, when")
    .option("--limit <n>", "how many", "30")
    .option("--json", "print JSON")
    .action(async (flags: { limit: string; json?: boolean }) => {
      const c = ctx();
      const runs = await listDailyRuns(await c.store(), parseIntFlag(flags.limit, "--limit", 1, 10_000));
      const rows = runs.map(({ summary: _summary, ...r }) => r);
      output(flags.json === true, rows, () =>
        rows.length === 0
          ? "No daily jobs yet."
          : table(
              ["date", "kind", "status", "attempts", "started", "finished", "error"],
              rows.map((r) => [r.date, r.kind, r.status, String(r.attempts), r.started_at, r.finished_at ?? "-", r.error ?? ""]),
            ),
      );
    });

  program
    .command("daily-summary")
    .description("show the stored summary of one day's daily job, as the job printed it")
    .argument("<date>", "YYYY-MM-DD, or `latest` for the newest job")
    .option("--json", "print JSON")
    .action(async (ref: string, flags: { json?: boolean }) => {
      const c = ctx();
      const store = await c.store();
      const run = ref === "latest" ? (await listDailyRuns(store, 1))[0] : await getDailyRun(store, parseDate(ref, "date"));
      if (run === undefined)
        throw new ChurnopsError("not_found", ref === "latest" ? "no daily job has run yet" : `no daily job ran for ${ref}`, { field: "date" });
      // A failed job keeps the summary of what it had done when it stopped.
      const summary = run.summary === null ? null : (JSON.parse(run.summary) as DailySummary);
      const record = { date: run.date, kind: run.kind, status: run.status, attempts: run.attempts, error: run.error, summary };
      output(flags.json === true, record, () => {
        const head =
          run.status === "complete"
            ? []
            : [`Daily job ${run.date}: ${run.status === "failed" ? `failed: ${run.error ?? "no error recorded"}` : `${run.status} since ${run.started_at}`}`];
        return [...head, summary === null ? "  (no summary recorded)" : formatDaily(summary)].join("\n");
      });
    });
}
