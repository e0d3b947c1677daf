import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { quoteIdent, quoteLiteral } from "../data/sql-quote.js";
import { snapshotFiles } from "../dataset/snapshots.js";
import { addDays } from "../days.js";
import { ChurnopsError } from "../errors.js";
import { requireCampaign } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { resolveRun, type ScoreRun } from "../store/runs.js";
import { upliftTrainingMembers } from "../store/uplift.js";

/** The least an arm needs (the trainer applies the same defaults): rows, and churners and stayers among them. */
export const MIN_ROWS_PER_ARM = 200;
export const MIN_CHURNERS_PER_ARM = 20;

/** The feature columns and customer id column of the model that scored a run (its bundle's schema). */
export type ModelSchema = (run: ScoreRun) => Promise<{ idColumn: string; features: readonly string[] }>;

export interface UpliftExportOptions {
  campaigns: readonly string[];
  /** The outcome window: churned within this many days after the campaign's score date. */
  horizonDays: number;
  out: string;
  modelSchema: ModelSchema;
  minRowsPerArm?: number;
  minChurnersPerArm?: number;
}

export interface ArmTally {
  rows: number;
  churners: number;
}

export interface CampaignExport {
  campaign: string;
  run_id: string;
  as_of: string;
  horizon_end: string;
  snapshot: string;
  members: number;
  /** Members with no outcome observed in the window (left out: what happened is not known yet). */
  no_outcome: number;
  /** Members whose customer is missing from (or twice in) the run's snapshot (left out). */
  not_in_snapshot: number;
  rows: number;
  treatment: ArmTally & { delivery: Record<string, number> };
  control: ArmTally;
}

export interface UpliftExportSummary {
  out: string;
  horizon_days: number;
  features: string[];
  rows: number;
  treatment: ArmTally;
  control: ArmTally;
  campaigns: CampaignExport[];
}

function relationOf(path: string): string {
  if (/\.(parquet|pq)$/i.test(path)) return `read_parquet(${quoteLiteral(path)})`;
  return `read_csv(${quoteLiteral(path)}, header = true)`;
}

/**
 * The uplift training table (docs/uplift.md, "The data"): one row per member of the given campaigns whose outcome
 * within the horizon is known, with its features exactly as the run the campaign was planned on scored them (the
 * snapshot that run read, or the daily job's kept copy of it), its arm, delivery state, outcome and planned risk.
 * Every member of a churnops campaign is randomised: the control group is drawn at random from the members chosen
 * by the same rule (and, for uplift campaigns, from the exploration group). Refuses, with each arm's counts, when an
 * arm has too few rows, churners or stayers to learn from.
 */
export async function exportUpliftData(store: Store, options: UpliftExportOptions): Promise<UpliftExportSummary> {
  if (options.campaigns.length === 0) throw new ChurnopsError("bad_input", "give at least one campaign (--campaign NAME[,NAME…])", { field: "campaign" });
  const out = resolve(options.out);
  const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await instance.connect();
  const tmp = `${out}.tmp-${process.pid}`;
  const summaries: CampaignExport[] = [];
  const features = new Set<string>();
  try {
    await conn.run(
      "CREATE TABLE members (customer_id VARCHAR, campaign VARCHAR, arm VARCHAR, risk DOUBLE, delivery VARCHAR, churned INTEGER, snapshot INTEGER)",
    );
    const selects: string[] = [];
    for (const [k, name] of options.campaigns.entries()) {
      const campaign = await requireCampaign(store, name);
      const run = await resolveRun(store, campaign.run_id);
      const schema = await options.modelSchema(run);
      for (const f of schema.features) features.add(f);
      const { files, skipped } = await snapshotFiles(store, { from: campaign.as_of, to: campaign.as_of });
      const file = files.find((f) => f.date === campaign.as_of);
      if (file === undefined) {
        const why = skipped.find((s) => s.date === campaign.as_of)?.reason ?? "no kept snapshot and no complete run of that date";
        throw new ChurnopsError(
          "data_not_found",
          `campaign ${name}: the features it was planned on (scores of ${campaign.as_of}, run ${campaign.run_id}) cannot be read: ${why}`,
          { field: "campaign" },
        );
      }
      const horizonEnd = addDays(campaign.as_of, options.horizonDays);
      const members = await upliftTrainingMembers(store, name, campaign.as_of, horizonEnd);
      const appender = await conn.createAppender("members");
      for (const m of members) {
        appender.appendVarchar(m.customer_id);
        appender.appendVarchar(name);
        appender.appendVarchar(m.arm);
        appender.appendDouble(m.probability);
        if (m.delivery === null) appender.appendNull();
        else appender.appendVarchar(m.delivery);
        if (m.churned === null) appender.appendNull();
        else appender.appendInteger(m.churned);
        appender.appendInteger(k);
        appender.endRow();
      }
      appender.closeSync();
      const id = quoteIdent(schema.idColumn);
      const columns = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${relationOf(file.path)}`)).getRowObjects().map((r) => String(r.column_name));
      if (!columns.includes(schema.idColumn))
        throw new ChurnopsError("bad_input", `campaign ${name}: snapshot ${file.path} has no id column ${JSON.stringify(schema.idColumn)}`, {
          field: "campaign",
        });
      const present = schema.features.filter((f) => columns.includes(f));
      await conn.run(
        `CREATE TABLE snap_${k} AS SELECT CAST(${id} AS VARCHAR) AS __cid, ${present.map(quoteIdent).join(", ")} FROM ${relationOf(file.path)} QUALIFY count(*) OVER (PARTITION BY CAST(${id} AS VARCHAR)) = 1`,
      );
      const stats = (
        await conn.runAndReadAll(`SELECT
          count(*) AS members,
          count(*) FILTER (WHERE m.churned IS NULL) AS no_outcome,
          count(*) FILTER (WHERE m.churned IS NOT NULL AND s.__cid IS NULL) AS not_in_snapshot
        FROM members m LEFT JOIN snap_${k} s ON s.__cid = m.customer_id WHERE m.snapshot = ${k}`)
      ).getRowObjects()[0] as Record<string, unknown>;
      const arms = (
        await conn.runAndReadAll(`SELECT m.arm, coalesce(m.delivery, 'none') AS delivery, count(*) AS n, sum(m.churned) AS churners
        FROM members m JOIN snap_${k} s ON s.__cid = m.customer_id WHERE m.snapshot = ${k} AND m.churned IS NOT NULL GROUP BY ALL`)
      ).getRowObjects();
      const treatment = { rows: 0, churners: 0, delivery: {} as Record<string, number> };
      const control = { rows: 0, churners: 0 };
      for (const a of arms) {
        const target = a.arm === "treatment" ? treatment : control;
        target.rows += Number(a.n);
        target.churners += Number(a.churners ?? 0);
        if (a.arm === "treatment") treatment.delivery[String(a.delivery)] = (treatment.delivery[String(a.delivery)] ?? 0) + Number(a.n);
      }
      summaries.push({
        campaign: name,
        run_id: campaign.run_id,
        as_of: campaign.as_of,
        horizon_end: horizonEnd,
        snapshot: file.path,
        members: Number(stats.members),
        no_outcome: Number(stats.no_outcome),
        not_in_snapshot: Number(stats.not_in_snapshot),
        rows: treatment.rows + control.rows,
        treatment,
        control,
      });
      selects.push(`SELECT m.customer_id AS __customer_id, m.campaign AS __campaign, m.arm AS __arm, coalesce(m.delivery, 'none') AS __delivery,
          m.churned AS __churned, m.risk AS __risk, s.* EXCLUDE (__cid)
        FROM members m JOIN snap_${k} s ON s.__cid = m.customer_id WHERE m.snapshot = ${k} AND m.churned IS NOT NULL`);
    }
    const total = {
      treatment: { rows: 0, churners: 0 },
      control: { rows: 0, churners: 0 },
    };
    for (const s of summaries) {
      total.treatment.rows += s.treatment.rows;
      total.treatment.churners += s.treatment.churners;
      total.control.rows += s.control.rows;
      total.control.churners += s.control.churners;
    }
    requireEnough(total, options.minRowsPerArm ?? MIN_ROWS_PER_ARM, options.minChurnersPerArm ?? MIN_CHURNERS_PER_ARM, summaries);
    mkdirSync(dirname(out), { recursive: true });
    await conn.run(`COPY (${selects.join("\nUNION ALL BY NAME\n")} ORDER BY __campaign, __customer_id) TO ${quoteLiteral(tmp)} (FORMAT parquet)`);
    renameSync(tmp, out);
    return { out, horizon_days: options.horizonDays, features: [...features], rows: total.treatment.rows + total.control.rows, ...total, campaigns: summaries };
  } finally {
    rmSync(tmp, { force: true });
    conn.closeSync();
    instance.closeSync();
  }
}

function requireEnough(total: { treatment: ArmTally; control: ArmTally }, minRows: number, minChurners: number, campaigns: readonly CampaignExport[]): void {
  const problems: string[] = [];
  for (const arm of ["treatment", "control"] as const) {
    const t = total[arm];
    const stayers = t.rows - t.churners;
    if (t.rows < minRows || t.churners < minChurners || stayers < minChurners)
      problems.push(
        `the ${arm} arm has ${t.rows} members with a known outcome, ${t.churners} churned and ${stayers} stayed (needs at least ${minRows} members, ${minChurners} churners and ${minChurners} stayers)`,
      );
  }
  if (problems.length === 0) return;
  const left = campaigns.map((c) => `${c.campaign}: ${c.no_outcome} without an outcome yet, ${c.not_in_snapshot} not in its snapshot`).join("; ");
  throw new ChurnopsError(
    "bad_input",
    `too little data to learn an uplift model from ${campaigns.map((c) => c.campaign).join(", ")}: ${problems.join("; ")} (left out — ${left}). Run more campaigns with a control group, or wait for more outcomes.`,
    { field: "campaign" },
  );
}
