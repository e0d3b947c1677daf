import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { batchRuntime } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { loadModel } from "../model/registry.js";
import { runTrainer } from "../model/trainer.js";
import { type BatchSummary, scoreBatch } from "../scoring/batch.js";
import { type CommandContext, output, parseChoice, parseDate, parseIntFlag, today } from "./context.js";
import { describeBands } from "./format.js";
import { batchProgress } from "./progress.js";

interface ScoreFlags {
  data: string;
  table?: string;
  query?: string;
  model: string;
  kind: string;
  asOf?: string;
  out?: string;
  json?: boolean;
  badRows?: string;
  chunkSize?: string;
  store: boolean;
  engine?: string;
  master?: string;
  jdbcOut?: string;
  rerun?: boolean;
  reasons?: string;
  lang?: string;
}

/** `--engine spark`: the same run on Apache Spark, by the trainer's `spark-score` (needs its spark extra). */
function sparkArgs(flags: ScoreFlags, modelName: string, kind: string, asOf: string): string[] {
  if (flags.out === undefined && flags.jdbcOut === undefined)
    throw new ChurnopsError("bad_input", "--engine spark writes to --out PATH and/or --jdbc-out URL; give one", { field: "out" });
  // The trainer runs in the project root: local paths are made absolute, URLs (jdbc:, s3a://…) pass as they are.
  const path = (p: string): string => (/^[a-z][a-z0-9+.-]*:/i.test(p) ? p : resolve(p));
  const isBundle = existsSync(join(flags.model, "bundle.json"));
  const args = ["spark-score", ...(isBundle ? ["--bundle", resolve(flags.model)] : ["--model", flags.model, "--model-name", modelName])];
  args.push("--data", path(flags.data), "--kind", kind, "--as-of", asOf);
  for (const [flag, value] of [
    ["--table", flags.table],
    ["--query", flags.query],
    ["--out", flags.out === undefined ? undefined : path(flags.out)],
    ["--jdbc-out", flags.jdbcOut],
    ["--master", flags.master],
  ] as const)
    if (value !== undefined) args.push(flag, value);
  if (flags.reasons !== undefined) args.push("--reasons", String(parseIntFlag(flags.reasons, "--reasons", 1, 10)), "--lang", flags.lang ?? "en");
  if (flags.json === true) args.push("--json");
  return args;
}

export function formatSummary(s: BatchSummary): string {
  // In the model's order (highest risk first), with every band shown even when no customer fell in it.
  const bands = s.bandCutoffs.map((b) => `${b.name} ${s.bands[b.name] ?? 0}`).join(", ");
  const lines = [
    s.status === "already_complete" ? `Run ${s.runId} was already complete; nothing re-scored.` : `Scored run ${s.runId}.`,
    `  model        ${s.modelName} v${s.modelVersion}`,
    `  source       ${s.source}`,
    `  rows read    ${s.rowsRead}${s.resumedFrom > 0 && s.status === "complete" ? ` (resumed after row ${s.resumedFrom})` : ""}`,
    `  scored       ${s.rowsScored}`,
    `  quarantined  ${s.rowsQuarantined}${s.rowsQuarantined > 0 ? `  (see: churnops quarantine ${s.runId})` : ""}`,
    `  bands        ${bands || "-"}`,
    `  cut-offs     ${describeBands(s.bandCutoffs)}; flagged as churners at p ≥ ${s.operatingThreshold.toFixed(3)}`,
  ];
  if (s.status === "complete") lines.push(`  speed        ${Math.round(s.rowsPerSecond)} rows/s in ${(s.durationMs / 1000).toFixed(1)} s`);
  if (s.out !== null) lines.push(`  written to   ${s.out}`);
  return lines.join("\n");
}

export function registerScore(program: Command, ctx: () => CommandContext): void {
  program
    .command("score")
    .description("score every customer of a table with a verified model and store the scores")
    .requiredOption("--data <file|url>", "CSV or Parquet file, or a sqlite:// / postgresql:// URL")
    .option("--table <name>", "table to read when --data is a database URL")
    .option("--query <sql>", "query to read when --data is a database URL")
    .option("--model <ref>", "champion, challenger, a version number, or a bundle directory", "champion")
    .option("--kind <kind>", "daily or monthly", "daily")
    .option("--as-of <date>", "the date the scores are for (YYYY-MM-DD; default today)")
    .option("--out <file>", "also write the scores to a .parquet or .csv file")
    .option("--bad-rows <policy>", "quarantine (default) or fail")
    .option("--chunk-size <rows>", "rows per chunk")
    .option("--no-store", "do not write to the store (needs --out; not resumable)")
    .option("--rerun", "replace the run's scores (kind, date and model) by a scoring of this input from its first row")
    .option("--reasons <n>", "add reason_1..N and reason_1..N_text (the top risk-raising features) to --out and store them with each score")
    .option("--lang <lang>", "language of the reason texts: en or ja", "en")
    .option("--json", "print the summary as JSON")
    .option("--engine <engine>", "ts (default) or spark (Apache Spark, through the trainer's spark extra)", "ts")
    .option("--master <url>", "Spark master with --engine spark, e.g. local[*] (default: spark-submit's)")
    .option("--jdbc-out <url>", "with --engine spark: jdbc: URL of the store to fill (score_runs, scores, quarantine)")
    .action(async (flags: ScoreFlags) => {
      const c = ctx();
      const kind = parseChoice(flags.kind, "--kind", ["daily", "monthly"] as const);
      const asOf = parseDate(flags.asOf ?? today(), "--as-of");
      if (parseChoice(flags.engine ?? "ts", "--engine", ["ts", "spark"] as const) === "spark") {
        const res = await runTrainer(c.config, sparkArgs(flags, c.config.model_name, kind, asOf), { passthrough: true });
        if (res.code !== 0) throw new ChurnopsError("trainer_failed", "Spark scoring failed (see the trainer's message above)", { exitCode: res.code });
        return;
      }
      const reasons = flags.reasons === undefined ? 0 : parseIntFlag(flags.reasons, "--reasons", 1, 10);
      const language = parseChoice(flags.lang ?? "en", "--lang", ["en", "ja"] as const);
      const badRows = parseChoice(flags.badRows ?? c.config.scoring.bad_rows, "--bad-rows", ["quarantine", "fail"] as const);
      const chunkSize = flags.chunkSize === undefined ? c.config.scoring.chunk_size : parseIntFlag(flags.chunkSize, "--chunk-size", 1, 1_000_000);
      // The store opens (and migrates) while the model loads and verifies.
      const store = flags.store ? c.store() : null;
      store?.catch(() => undefined);
      const model = await loadModel(c.config, flags.model, batchRuntime(c.config));
      const progress = batchProgress(c.log, "scoring");
      try {
        const summary = await scoreBatch({
          source: { data: flags.data, table: flags.table, query: flags.query },
          model,
          kind,
          asOf,
          store: await store,
          out: flags.out,
          chunkSize,
          badRows,
          rerun: flags.rerun,
          reasons,
          language,
          log: c.log,
          onProgress: progress.update,
        });
        progress.stop();
        c.log.info(
          { event: "score.done", run_id: summary.runId, rows_scored: summary.rowsScored, rows_quarantined: summary.rowsQuarantined },
          "score run finished",
        );
        output(flags.json === true, summary, () => formatSummary(summary));
      } finally {
        progress.stop();
        await model.close();
      }
    });
}
