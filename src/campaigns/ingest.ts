import { openSource, type SourceSpec } from "../data/source.js";
import { ChurnopsError } from "../errors.js";
import type { Store } from "../store/db.js";
import { addOptOuts, type OptOutRow, type OutcomeRow, unscoredIds, upsertOutcomes } from "../store/outcomes.js";

const TRUE = new Set(["1", "yes", "y", "true", "t", "churned"]);
const FALSE = new Set(["0", "no", "n", "false", "f", "stayed", "retained"]);

/** A yes/no cell: yes/no, true/false, 1/0 (any case); null when it is none of these. */
export function parseFlag(value: unknown): boolean | null {
  if (typeof value === "boolean") return value;
  if (typeof value === "number" || typeof value === "bigint") return Number(value) === 1 ? true : Number(value) === 0 ? false : null;
  if (typeof value !== "string") return null;
  const v = value.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : null;
}

/** The calendar day (YYYY-MM-DD) of a date or timestamp cell; null when it is not one. */
export function parseDay(value: unknown): string | null {
  const text =
    value instanceof Date ? value.toISOString() : typeof value === "string" ? value.trim() : value === null || value === undefined ? "" : String(value);
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (m === null) return null;
  const day = `${m[1]}-${m[2]}-${m[3]}`;
  const parsed = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== day ? null : day;
}

export interface OutcomeColumns {
  idColumn: string;
  churnedColumn: string;
  /** Column with the day each outcome was observed; null = every row was observed on `observedAt`. */
  observedAtColumn: string | null;
  observedAt: string;
}

export interface IngestSummary {
  source: string;
  rows: number;
  recorded: number;
  churned: number;
  stayed: number;
  skipped: number;
  /** Up to five skipped rows with the reason. */
  skippedExamples: string[];
}

/**
 * Record what happened to customers: one outcome per (customer, day observed), upserted, so ingesting the
 * same file twice changes nothing. Rows with no id, an unreadable churn flag or date are skipped and counted.
 */
export async function ingestOutcomes(store: Store, spec: SourceSpec, columns: OutcomeColumns, now = new Date()): Promise<IngestSummary> {
  const today = now.toISOString().slice(0, 10);
  if (columns.observedAtColumn === null && columns.observedAt > today)
    throw new ChurnopsError("bad_input", `--observed-at ${columns.observedAt} is in the future (today is ${today}); outcomes are what already happened`, {
      field: "observed-at",
    });
  const source = await openSource(spec);
  // Outcome files come from other systems with their own column names: a missing column is named with the
  // `outcomes ingest` flag that points at the right one.
  const wanted = [
    { column: columns.idColumn, what: "customer id", flag: "--id-column NAME" },
    { column: columns.churnedColumn, what: "churned (yes/no)", flag: "--churned-column NAME" },
    ...(columns.observedAtColumn === null
      ? []
      : [{ column: columns.observedAtColumn, what: "day observed", flag: "--observed-at-column NAME, or --observed-at DATE for every row" }]),
  ];
  const missing = wanted.filter((w) => !source.columns.includes(w.column));
  if (missing.length > 0) {
    await source.close();
    throw new ChurnopsError(
      "bad_input",
      `${source.description}: ${missing.map((m) => `no ${m.what} column ${JSON.stringify(m.column)} (set it with ${m.flag})`).join("; ")}; its columns are ${source.columns.join(", ")}`,
      { field: missing[0]?.flag.split(" ")[0]?.slice(2) },
    );
  }
  const summary: IngestSummary = { source: source.description, rows: 0, recorded: 0, churned: 0, stayed: 0, skipped: 0, skippedExamples: [] };
  const skip = (row: number, reason: string): void => {
    summary.skipped++;
    if (summary.skippedExamples.length < 5) summary.skippedExamples.push(`row ${row}: ${reason}`);
  };
  try {
    for await (const chunk of source.chunks({ columns: wanted.map((w) => w.column), chunkSize: 50_000, skipRows: 0 })) {
      const ids = chunk.columns.get(columns.idColumn) ?? [];
      const flags = chunk.columns.get(columns.churnedColumn) ?? [];
      const days = columns.observedAtColumn === null ? null : (chunk.columns.get(columns.observedAtColumn) ?? []);
      const rows: OutcomeRow[] = [];
      for (let i = 0; i < chunk.size; i++) {
        const rowNumber = chunk.start + i + 1;
        const id = ids[i];
        if (id === null || id === undefined || String(id).trim() === "") {
          skip(rowNumber, `${columns.idColumn} is empty`);
          continue;
        }
        const churned = parseFlag(flags[i]);
        if (churned === null) {
          skip(rowNumber, `${columns.churnedColumn} ${JSON.stringify(flags[i])} is not yes/no`);
          continue;
        }
        const day = days === null ? columns.observedAt : parseDay(days[i]);
        if (day === null) {
          skip(rowNumber, `${columns.observedAtColumn} ${JSON.stringify(days?.[i])} is not a date`);
          continue;
        }
        if (day > today) {
          skip(rowNumber, `${columns.observedAtColumn} ${day} is in the future (today is ${today})`);
          continue;
        }
        rows.push({ customer_id: String(id), observed_at: day, churned: churned ? 1 : 0, source: source.description, ingested_at: now.toISOString() });
        if (churned) summary.churned++;
        else summary.stayed++;
      }
      await upsertOutcomes(store, rows);
      summary.rows += chunk.size;
      summary.recorded += rows.length;
    }
  } finally {
    await source.close();
  }
  return summary;
}

export interface OptOutSummary {
  source: string;
  /** Opted-out customers read. */
  optedOut: number;
  /** How many of them were new to the list. */
  added: number;
  /**
   * Ids the score run checked against never scored: recorded all the same (the customer may appear later), but
   * often a typo or another system's ids. Null when there was no run to check against.
   */
  unknown: { run_id: string; count: number; examples: string[] } | null;
}

/** Adds opt-outs chunk by chunk, noting which ids the check run did not score. */
function optOutRecorder(store: Store, checkRun: string | null) {
  const unknown = checkRun === null ? null : { run_id: checkRun, count: 0, examples: [] as string[] };
  return {
    unknown,
    add: async (rows: readonly OptOutRow[]): Promise<number> => {
      if (unknown !== null) {
        const ids = await unscoredIds(
          store,
          unknown.run_id,
          rows.map((r) => r.customer_id),
        );
        unknown.count += ids.length;
        unknown.examples.push(...ids.slice(0, 5 - unknown.examples.length));
      }
      return addOptOuts(store, rows);
    },
  };
}

/** Record opt-outs of the given customer ids (from the command line). */
export async function optOutIds(store: Store, ids: readonly string[], checkRun: string | null, now = new Date()): Promise<OptOutSummary> {
  const recorder = optOutRecorder(store, checkRun);
  const rows = [...new Set(ids)].map((id) => ({ customer_id: id, source: "cli", opted_out_at: now.toISOString() }));
  const added = await recorder.add(rows);
  return { source: "cli", optedOut: rows.length, added, unknown: recorder.unknown };
}

/**
 * Record marketing opt-outs from a table: every row's customer, or, with `flagColumn`, the rows whose flag is
 * yes. With `checkRun`, ids that run did not score are counted (see `OptOutSummary.unknown`).
 */
export async function importOptOuts(
  store: Store,
  spec: SourceSpec,
  idColumn: string,
  flagColumn: string | null,
  options: { checkRun?: string | null; now?: Date } = {},
): Promise<OptOutSummary> {
  const source = await openSource(spec);
  const recorder = optOutRecorder(store, options.checkRun ?? null);
  const now = options.now ?? new Date();
  let optedOut = 0;
  let added = 0;
  try {
    for (const column of flagColumn === null ? [idColumn] : [idColumn, flagColumn])
      if (!source.columns.includes(column))
        throw new ChurnopsError("bad_input", `${source.description} has no column ${column}; its columns are ${source.columns.join(", ")}`, {
          field: "column",
        });
    const columns = flagColumn === null ? [idColumn] : [idColumn, flagColumn];
    for await (const chunk of source.chunks({ columns, chunkSize: 50_000, skipRows: 0 })) {
      const ids = chunk.columns.get(idColumn) ?? [];
      const flags = flagColumn === null ? null : (chunk.columns.get(flagColumn) ?? []);
      const rows: OptOutRow[] = [];
      for (let i = 0; i < chunk.size; i++) {
        const id = ids[i];
        if (id === null || id === undefined || String(id).trim() === "") continue;
        if (flags !== null && parseFlag(flags[i]) !== true) continue;
        rows.push({ customer_id: String(id), source: source.description, opted_out_at: now.toISOString() });
      }
      optedOut += rows.length;
      added += await recorder.add(rows);
    }
  } finally {
    await source.close();
  }
  return { source: source.description, optedOut, added, unknown: recorder.unknown };
}
