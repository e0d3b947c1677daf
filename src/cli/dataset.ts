import { join } from "node:path";
import type { Command } from "commander";
import { type BuildSummary, buildDataset } from "../dataset/build.js";
import { parseHorizon } from "../dataset/horizon.js";
import { type CommandContext, output, parseDate, today } from "./context.js";

interface BuildFlags {
  horizon: string;
  from?: string;
  to?: string;
  asOf?: string;
  out?: string;
  idColumn: string;
  labelColumn: string;
  positive: string;
  drop?: string;
  json?: boolean;
}

export function formatBuild(s: BuildSummary): string {
  const l = s.left_out;
  return [
    `Built a training set of ${s.rows} rows (${s.positives} churned within ${s.horizon_days} days, ${s.negatives} stayed) from ${s.snapshots.length} snapshot(s).`,
    `  file          ${s.out}`,
    `  fingerprint   ${s.fingerprint}`,
    `  labels        outcomes known through ${s.labels_through ?? "(none yet)"} (as of ${s.as_of})`,
    `  snapshots     ${s.snapshots.map((x) => `${x.date} (${x.rows}, ${x.origin})`).join(", ")}`,
    ...s.skipped_snapshots.map((x) => `  skipped       ${x.date}: ${x.reason}`),
    `  rows read     ${s.rows_read}`,
    `  left out      censored ${l.censored} (horizon not ended), already churned ${l.already_churned}, treated in a campaign ${l.treated}, no outcome ${l.unobserved}, duplicate id ${l.duplicate_id}, no id ${l.missing_id}`,
    `  control group ${s.control_rows} row(s), marked in campaign_arm`,
  ].join("\n");
}

export function registerDataset(program: Command, ctx: () => CommandContext): void {
  const dataset = program.command("dataset").description("point-in-time training sets from the snapshots churnops scored and the outcomes it ingested");
  dataset
    .command("build")
    .description("one row per customer and snapshot: features as the snapshot held them, label = churned within the horizon after it")
    .requiredOption("--horizon <days>", "label horizon, e.g. 30d (or 4w)")
    .option("--from <date>", "first snapshot date (YYYY-MM-DD)")
    .option("--to <date>", "last snapshot date (YYYY-MM-DD)")
    .option("--as-of <date>", "only outcomes observed by this day count (default today)")
    .option("--out <file>", "Parquet file to write (default <home>/datasets/<fingerprint>.parquet)")
    .option("--id-column <name>", "customer id column of the snapshots", "customer_id")
    .option("--label-column <name>", "name of the label column written (a snapshot column of that name is never passed through)", "churned")
    .option("--positive <value>", "the label's positive value", "1")
    .option("--drop <columns>", "comma-separated snapshot columns to leave out")
    .option("--json", "print JSON")
    .action(async (flags: BuildFlags) => {
      const c = ctx();
      const horizonDays = parseHorizon(flags.horizon);
      const from = flags.from === undefined ? undefined : parseDate(flags.from, "--from");
      const to = flags.to === undefined ? undefined : parseDate(flags.to, "--to");
      const asOf = parseDate(flags.asOf ?? today(), "--as-of");
      const drop = flags.drop
        ?.split(",")
        .map((x) => x.trim())
        .filter((x) => x !== "");
      const summary = await buildDataset(await c.store(), {
        horizonDays,
        from,
        to,
        asOf,
        idColumn: flags.idColumn,
        label: { column: flags.labelColumn, positive: flags.positive },
        drop,
        out: flags.out ?? ((fingerprint) => join(c.config.home, "datasets", `${fingerprint}.parquet`)),
      });
      c.log.info({ event: "dataset.built", fingerprint: summary.fingerprint, rows: summary.rows, positives: summary.positives }, "training set built");
      output(flags.json === true, summary, () => formatBuild(summary));
    });
}
