import type { Command } from "commander";
import { type IngestSummary, ingestOutcomes } from "../campaigns/ingest.js";
import { type CommandContext, output, parseDate } from "./context.js";

interface IngestFlags {
  dataUrl?: string;
  idColumn: string;
  churnedColumn: string;
  observedAtColumn: string;
  observedAt?: string;
  json?: boolean;
}

function formatIngest(s: IngestSummary): string {
  return [
    `Ingested outcomes from ${s.source}.`,
    `  rows      ${s.rows}`,
    `  recorded  ${s.recorded} (churned ${s.churned}, stayed ${s.stayed})`,
    `  skipped   ${s.skipped}`,
    ...s.skippedExamples.map((e) => `            ${e}`),
  ].join("\n");
}

export function registerOutcomes(program: Command, ctx: () => CommandContext): void {
  const outcomes = program.command("outcomes").description("what happened to customers later: the labels campaigns and monitoring are judged by");
  outcomes
    .command("ingest <source>")
    .description("record outcomes (customer, churned yes/no, observed at) from a CSV/Parquet file, or a table with --data-url")
    .option("--data-url <url>", "sqlite:// or postgresql:// database; <source> is then the table name")
    .option("--id-column <name>", "customer id column", "customer_id")
    .option("--churned-column <name>", "churned column (yes/no, true/false, 1/0)", "churned")
    .option("--observed-at-column <name>", "column with the day the outcome was observed", "observed_at")
    .option("--observed-at <date>", "the day every row was observed (instead of a column)")
    .option("--json", "print JSON")
    .action(async (source: string, flags: IngestFlags) => {
      const c = ctx();
      const spec = flags.dataUrl === undefined ? { data: source } : { data: flags.dataUrl, table: source };
      const observedAt = flags.observedAt === undefined ? null : parseDate(flags.observedAt, "--observed-at");
      const summary = await ingestOutcomes(await c.store(), spec, {
        idColumn: flags.idColumn,
        churnedColumn: flags.churnedColumn,
        observedAtColumn: observedAt === null ? flags.observedAtColumn : null,
        observedAt: observedAt ?? "",
      });
      c.log.info({ event: "outcomes.ingested", source: summary.source, recorded: summary.recorded, skipped: summary.skipped }, "outcomes ingested");
      output(flags.json === true, summary, () => formatIngest(summary));
    });
}
