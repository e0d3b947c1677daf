import { createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { quoteIdent, quoteLiteral } from "../data/sql-quote.js";
import { ChurnopsError } from "../errors.js";
import { iterateArms, iterateOutcomes, latestOutcomeDay, saveDatasetBuild } from "../store/datasets.js";
import type { Store } from "../store/db.js";
import { addDays } from "./horizon.js";
import { type SkippedSnapshot, type SnapshotFile, snapshotFiles } from "./snapshots.js";

export interface BuildOptions {
  /** Label: churned within this many days after the snapshot date. */
  horizonDays: number;
  /** Snapshot dates from / to (inclusive, YYYY-MM-DD); open when absent. */
  from?: string | undefined;
  to?: string | undefined;
  /** Only outcomes observed on or before this day count (default today): what was known then. */
  asOf: string;
  idColumn: string;
  /** The label column written, and its positive value (as the model's target expects it). */
  label: { column: string; positive: string };
  /** Snapshot columns to leave out of the set (e.g. an oracle column of a synthetic table). */
  drop?: readonly string[] | undefined;
  /** Where the Parquet file goes; a function gets the fingerprint (so a default path can name it). */
  out: string | ((fingerprint: string) => string);
}

/** Why a snapshot row is not a training row, counted in the summary. */
export interface LeftOut {
  /** No customer id, or an empty one. */
  missing_id: number;
  /** The id occurs more than once in the same snapshot: which row held the features is unknown. */
  duplicate_id: number;
  /** An outcome on or before the snapshot date says the customer had already churned. */
  already_churned: number;
  /** The horizon ends after the last day outcomes are known for: the label is not known yet. */
  censored: number;
  /** Treated by a campaign inside the label window: the label measures the offer, not the risk. */
  treated: number;
  /** The horizon has ended, but no outcome says whether the customer churned or stayed through it. */
  unobserved: number;
}

export interface BuildSummary {
  fingerprint: string;
  out: string;
  horizon_days: number;
  from: string | null;
  to: string | null;
  as_of: string;
  /** The last day an outcome was observed by `as_of`: horizons must end by it. */
  labels_through: string | null;
  snapshots: { date: string; origin: SnapshotFile["origin"]; path: string; rows: number }[];
  skipped_snapshots: SkippedSnapshot[];
  rows_read: number;
  rows: number;
  positives: number;
  negatives: number;
  /** Rows of customers in a campaign's control group inside their label window (kept, marked in campaign_arm). */
  control_rows: number;
  left_out: LeftOut;
  /** Treated members of campaigns inside the label window are left out (see docs/retraining.md). */
  treated_policy: "exclude";
  columns: string[];
}

/** Columns the builder writes itself; a snapshot's own column of the same name never passes through. */
const SNAPSHOT_DATE = "snapshot_date";
const CAMPAIGN_ARM = "campaign_arm";

function relationOf(path: string): string {
  if (/\.(parquet|pq)$/i.test(path)) return `read_parquet(${quoteLiteral(path)})`;
  return `read_csv(${quoteLiteral(path)}, header = true)`;
}

/** The negative value beside a positive label: 1 → 0, Yes → No, true → false; otherwise `not <positive>`. */
function labelValues(positive: string): { sqlType: string; pos: string; neg: string } {
  const n = Number(positive);
  if (positive.trim() !== "" && Number.isFinite(n)) return { sqlType: "DOUBLE", pos: String(n), neg: n === 0 ? "1" : "0" };
  const pairs: Record<string, string> = { yes: "no", true: "false", y: "n", t: "f", churned: "stayed" };
  const lower = positive.toLowerCase();
  const neg = pairs[lower];
  const negative =
    neg === undefined
      ? `not ${positive}`
      : positive === positive.toUpperCase()
        ? neg.toUpperCase()
        : positive[0] === positive[0]?.toUpperCase()
          ? neg[0]?.toUpperCase() + neg.slice(1)
          : neg;
  return { sqlType: "VARCHAR", pos: quoteLiteral(positive), neg: quoteLiteral(negative) };
}

async function columnsOf(conn: DuckDBConnection, relation: string): Promise<string[]> {
  return (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${relation}`)).getRowObjects().map((r) => String(r.column_name));
}

async function loadFacts(conn: DuckDBConnection, store: Store, asOf: string, from: string | undefined): Promise<void> {
  await conn.run("CREATE TABLE outcomes_raw (customer_id VARCHAR, observed_at VARCHAR, churned INTEGER)");
  const outcomes = await conn.createAppender("outcomes_raw");
  for await (const page of iterateOutcomes(store, asOf)) {
    for (const o of page) {
      outcomes.appendVarchar(o.customer_id);
      outcomes.appendVarchar(o.observed_at.slice(0, 10));
      outcomes.appendInteger(o.churned);
      outcomes.endRow();
    }
  }
  outcomes.closeSync();
  await conn.run("CREATE TABLE arms_raw (customer_id VARCHAR, campaign_date VARCHAR, arm VARCHAR)");
  const arms = await conn.createAppender("arms_raw");
  for await (const page of iterateArms(store, from)) {
    for (const a of page) {
      arms.appendVarchar(a.customer_id);
      arms.appendVarchar(a.as_of.slice(0, 10));
      arms.appendVarchar(a.arm);
      arms.endRow();
    }
  }
  arms.closeSync();
}

/**
 * Build a point-in-time training set: one row per customer and snapshot, with the features exactly as that
 * snapshot held them and the label "churned within the horizon after the snapshot date" from the outcomes the
 * store holds. The time rules, each one a guard against a known way of leaking the future into training:
 *
 * - features come only from the row's own snapshot file (never a later one, never today's table);
 * - a label comes only from outcomes observed strictly after the snapshot date and no later than the horizon's
 *   end; an outcome on or before the snapshot date never labels it (a churn then means the customer was already
 *   gone: the row is left out);
 * - a row whose horizon ends after the last day outcomes are known for is censored (left out, counted), not
 *   taken as "stayed";
 * - "stayed" needs evidence: an observation that the customer had not churned, on or after the horizon's end;
 * - members of a campaign planned inside the label window: treated ones are left out (their label measures the
 *   offer), control ones are kept and marked in `campaign_arm`.
 *
 * The output is sorted (snapshot date, customer id), so the same inputs give the same file, and its fingerprint
 * (of the rows and column names) is recorded in the store.
 */
export async function buildDataset(store: Store, options: BuildOptions): Promise<BuildSummary> {
  const h = options.horizonDays;
  const window = { from: options.from, to: options.to };
  if (options.from !== undefined && options.to !== undefined && options.from > options.to)
    throw new ChurnopsError("bad_input", `--from ${options.from} is after --to ${options.to}`, { field: "from" });
  const { files, skipped } = await snapshotFiles(store, window);
  if (files.length === 0) {
    const why = skipped.length === 0 ? "no complete score run or kept snapshot is dated in it" : skipped.map((s) => `${s.date}: ${s.reason}`).join("; ");
    throw new ChurnopsError("data_not_found", `no snapshot to build a training set from in ${describeWindow(window)}: ${why}`, { field: "from" });
  }
  const labelsThrough = await latestOutcomeDay(store, options.asOf);
  const reserved = new Set([SNAPSHOT_DATE, CAMPAIGN_ARM, options.label.column, ...(options.drop ?? [])]);
  const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await instance.connect();
  try {
    const selects: string[] = [];
    for (const f of files) {
      const rel = relationOf(f.path);
      let cols: string[];
      try {
        cols = await columnsOf(conn, rel);
      } catch (err) {
        throw new ChurnopsError("bad_input", `snapshot ${f.date} (${f.path}) cannot be read: ${(err as Error).message.split("\n")[0]}`, { field: "snapshot" });
      }
      if (!cols.includes(options.idColumn))
        throw new ChurnopsError(
          "bad_input",
          `snapshot ${f.date} (${f.path}) has no id column ${JSON.stringify(options.idColumn)}; its columns are ${cols.join(", ")}`,
          {
            field: "id-column",
          },
        );
      const keep = cols.filter((c) => !reserved.has(c) || c === options.idColumn);
      selects.push(`SELECT DATE ${quoteLiteral(f.date)} AS __snapshot_date, ${keep.map(quoteIdent).join(", ")} FROM ${rel}`);
    }
    await conn.run(`CREATE TABLE snap AS ${selects.join("\nUNION ALL BY NAME\n")}`);
    const id = quoteIdent(options.idColumn);
    await conn.run(
      `CREATE TABLE keyed AS SELECT *, CAST(${id} AS VARCHAR) AS __cid, count(*) OVER (PARTITION BY __snapshot_date, CAST(${id} AS VARCHAR)) AS __dups FROM snap`,
    );
    await loadFacts(conn, store, options.asOf, options.from === undefined ? undefined : options.from);
    await conn.run("CREATE TABLE outcomes AS SELECT customer_id, CAST(observed_at AS DATE) AS observed_at, churned FROM outcomes_raw");
    await conn.run("CREATE TABLE arms AS SELECT customer_id, CAST(campaign_date AS DATE) AS campaign_date, arm FROM arms_raw");
    // Everything a label depends on, one row per customer, from the outcomes known by as-of: the first churn
    // observed and the last "not churned" one. A churn on or before the snapshot makes the first churn fall there
    // too; otherwise the first churn after the snapshot is the one that decides its window. One row per customer
    // keeps the join linear even when outcomes are ingested for everyone every day.
    await conn.run(`CREATE TABLE facts AS
      SELECT customer_id AS __cid,
        min(observed_at) FILTER (WHERE churned = 1) AS first_churn,
        max(observed_at) FILTER (WHERE churned = 0) AS last_stayed
      FROM outcomes GROUP BY customer_id`);
    // An offer planned on the snapshot day or later, before the horizon ends, lands inside the label window.
    await conn.run(`CREATE TABLE armfacts AS
      SELECT k.__snapshot_date, k.__cid, bool_or(a.arm = 'treatment') AS treated, bool_or(a.arm = 'control') AS control
      FROM (SELECT DISTINCT __snapshot_date, __cid FROM keyed WHERE __cid IS NOT NULL) k
      JOIN arms a ON a.customer_id = k.__cid AND a.campaign_date >= k.__snapshot_date AND a.campaign_date < k.__snapshot_date + ${h}
      GROUP BY ALL`);
    const through = labelsThrough === null ? "NULL" : `DATE ${quoteLiteral(labelsThrough)}`;
    await conn.run(`CREATE TABLE classified AS
      SELECT k.*, coalesce(a.control AND NOT a.treated, false) AS __control, CASE
        WHEN k.__cid IS NULL OR trim(k.__cid) = '' THEN 'missing_id'
        WHEN k.__dups > 1 THEN 'duplicate_id'
        WHEN f.first_churn <= k.__snapshot_date THEN 'already_churned'
        WHEN ${through} IS NULL OR k.__snapshot_date + ${h} > ${through} THEN 'censored'
        WHEN coalesce(a.treated, false) THEN 'treated'
        WHEN f.first_churn <= k.__snapshot_date + ${h} THEN 'positive'
        WHEN f.last_stayed >= k.__snapshot_date + ${h} THEN 'negative'
        ELSE 'unobserved' END AS __status
      FROM keyed k
      LEFT JOIN facts f ON f.__cid = k.__cid
      LEFT JOIN armfacts a ON a.__snapshot_date = k.__snapshot_date AND a.__cid = k.__cid`);
    const features = (await columnsOf(conn, "snap")).filter((c) => c !== "__snapshot_date");
    const lv = labelValues(options.label.positive);
    await conn.run(`CREATE TABLE dataset AS
      SELECT row_number() OVER (ORDER BY __snapshot_date, __cid) AS __ord,
        strftime(__snapshot_date, '%Y-%m-%d') AS ${quoteIdent(SNAPSHOT_DATE)},
        ${features.map(quoteIdent).join(", ")},
        CAST(CASE WHEN __status = 'positive' THEN ${lv.pos} ELSE ${lv.neg} END AS ${lv.sqlType}) AS ${quoteIdent(options.label.column)},
        CASE WHEN __control THEN 'control' END AS ${quoteIdent(CAMPAIGN_ARM)}
      FROM classified WHERE __status IN ('positive', 'negative')`);
    const columns = [SNAPSHOT_DATE, ...features, options.label.column, CAMPAIGN_ARM];
    const content = (
      await conn.runAndReadAll(
        `SELECT coalesce(md5(string_agg(md5(CAST(d AS VARCHAR)), '' ORDER BY __ord)), '') AS h FROM (SELECT * EXCLUDE (__ord), __ord FROM dataset) d`,
      )
    ).getRowObjects()[0]?.h;
    const fingerprint = createHash("sha256")
      .update(JSON.stringify({ columns, rows: String(content) }))
      .digest("hex");
    const out = resolve(typeof options.out === "string" ? options.out : options.out(fingerprint));
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    try {
      await conn.run(`COPY (SELECT * EXCLUDE (__ord) FROM dataset ORDER BY __ord) TO ${quoteLiteral(tmp)} (FORMAT parquet)`);
      renameSync(tmp, out);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    const statuses = Object.fromEntries(
      (await conn.runAndReadAll("SELECT __status AS s, count(*) AS n FROM classified GROUP BY ALL")).getRowObjects().map((r) => [String(r.s), Number(r.n)]),
    );
    const controlRows = Number(
      (await conn.runAndReadAll(`SELECT count(*) AS n FROM dataset WHERE ${quoteIdent(CAMPAIGN_ARM)} = 'control'`)).getRowObjects()[0]?.n ?? 0,
    );
    const perDate = new Map(
      (await conn.runAndReadAll("SELECT strftime(__snapshot_date, '%Y-%m-%d') AS d, count(*) AS n FROM snap GROUP BY ALL"))
        .getRowObjects()
        .map((r) => [String(r.d), Number(r.n)]),
    );
    const n = (s: string): number => statuses[s] ?? 0;
    const summary: BuildSummary = {
      fingerprint,
      out,
      horizon_days: h,
      from: options.from ?? null,
      to: options.to ?? null,
      as_of: options.asOf,
      labels_through: labelsThrough,
      snapshots: files.map((f) => ({ date: f.date, origin: f.origin, path: f.path, rows: perDate.get(f.date) ?? 0 })),
      skipped_snapshots: skipped,
      rows_read: [...perDate.values()].reduce((a, b) => a + b, 0),
      rows: n("positive") + n("negative"),
      positives: n("positive"),
      negatives: n("negative"),
      control_rows: controlRows,
      left_out: {
        missing_id: n("missing_id"),
        duplicate_id: n("duplicate_id"),
        already_churned: n("already_churned"),
        censored: n("censored"),
        treated: n("treated"),
        unobserved: n("unobserved"),
      },
      treated_policy: "exclude",
      columns,
    };
    await saveDatasetBuild(store, {
      fingerprint,
      built_at: new Date().toISOString(),
      horizon_days: h,
      from_date: summary.from,
      to_date: summary.to,
      labels_through: labelsThrough,
      rows: summary.rows,
      positives: summary.positives,
      summary: JSON.stringify({ ...summary, out: undefined }),
      out,
    });
    return summary;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

function describeWindow(w: { from?: string | undefined; to?: string | undefined }): string {
  if (w.from === undefined && w.to === undefined) return "the store";
  return `${w.from ?? "the first snapshot"} … ${w.to ?? "the last snapshot"}`;
}

/** The rolling window of a retrain on `date`: snapshots from `windowDays` back, whose horizons may have ended. */
export function rollingWindow(date: string, windowDays: number, horizonDays: number): { from: string; to: string } {
  return { from: addDays(date, -windowDays), to: addDays(date, -horizonDays) };
}
