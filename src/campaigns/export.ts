import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { csvCell } from "../csv-safe.js";
import type { Store } from "../store/db.js";
import { assignToFile, fileMessages, type MessageRow, markFileDelivered } from "../store/outbox.js";

/** The columns of an export line, in order: what a CRM import needs, the idempotency key first. */
export const EXPORT_COLUMNS = [
  "idempotency_key",
  "campaign",
  "customer_id",
  "offer",
  "probability",
  "band",
  "rank",
  "model_name",
  "model_version",
  "run_id",
  "planned_at",
  "offer_reason",
  "offer_reason_text",
  "message",
] as const;

interface Payload extends Record<string, unknown> {
  offer_reason?: { feature?: unknown; text?: unknown } | null;
  reasons?: { feature?: unknown; text?: unknown }[] | null;
}

/** A CSV line's cell for a column: the payload's field, or, for the offer's reason, its feature and sentence. */
function cellOf(payload: Payload, column: (typeof EXPORT_COLUMNS)[number]): unknown {
  if (column === "offer_reason") return payload.offer_reason?.feature ?? null;
  if (column === "offer_reason_text") return payload.offer_reason?.text ?? null;
  return payload[column];
}

/** The CSV header: the fixed columns, then reason_1..N and reason_1..N_text for the most reasons a message has. */
export function exportHeader(reasons: number): string[] {
  const header: string[] = [...EXPORT_COLUMNS];
  for (let k = 1; k <= reasons; k++) header.push(`reason_${k}`, `reason_${k}_text`);
  return header;
}

export function fileTarget(path: string): string {
  return `file:${resolve(path)}`;
}

export function targetPath(target: string): string {
  return target.slice("file:".length);
}

function formatLine(row: MessageRow, csv: boolean, reasons: number): string {
  if (!csv) return `${row.payload}\n`;
  const payload = JSON.parse(row.payload) as Payload;
  const cells = EXPORT_COLUMNS.map((c) => csvCell(cellOf(payload, c)));
  for (let k = 0; k < reasons; k++) {
    const reason = payload.reasons?.[k];
    cells.push(csvCell(reason?.feature ?? null), csvCell(reason?.text ?? null));
  }
  return `${cells.join(",")}\n`;
}

/** The most reasons any message of the file carries (campaign plans copy them from the scores, score --reasons N). */
async function mostReasons(store: Store, campaign: string, target: string): Promise<number> {
  let most = 0;
  for await (const page of fileMessages(store, campaign, target)) {
    for (const row of page) most = Math.max(most, (JSON.parse(row.payload) as Payload).reasons?.length ?? 0);
  }
  return most;
}

/**
 * (Re)write the file that holds every message assigned to `target`, atomically: a temporary file in the same
 * folder, flushed to disk, then renamed over the old one. A reader sees the old file or the new, never half,
 * and since the whole set is rewritten each time, a line never appears twice, however often a crashed export
 * is finished. Returns the number of lines.
 */
export async function writeTargetFile(store: Store, campaign: string, target: string): Promise<number> {
  const path = targetPath(target);
  const csv = path.toLowerCase().endsWith(".csv");
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${dirname(path)}/.${basename(path)}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  let lines = 0;
  try {
    // A CSV has a column pair per reason rank: one pass to count them (exports are a campaign's size, not a run's).
    const reasons = csv ? await mostReasons(store, campaign, target) : 0;
    if (csv) writeSync(fd, `${exportHeader(reasons).join(",")}\n`);
    for await (const page of fileMessages(store, campaign, target)) {
      writeSync(fd, page.map((row) => formatLine(row, csv, reasons)).join(""));
      lines += page.length;
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return lines;
}

export interface ExportResult {
  target: string;
  /** Messages newly delivered by this export. */
  delivered: number;
  /** Lines in the file now (earlier exports to the same file included). */
  lines: number;
}

/**
 * Export a campaign's pending messages to a JSONL (default) or CSV (`.csv`) file for a CRM import. Three steps,
 * each safe to repeat: assign pending messages to the file, write the file atomically, mark them delivered.
 */
export async function exportMessages(store: Store, campaign: string, path: string, owner: string, leaseUntil: Date): Promise<ExportResult> {
  const target = fileTarget(path);
  await assignToFile(store, campaign, target, owner, leaseUntil);
  return finishFileExport(store, campaign, target);
}

/** Steps two and three of an export: also how a later run completes one that crashed. */
export async function finishFileExport(store: Store, campaign: string, target: string): Promise<ExportResult> {
  const lines = await writeTargetFile(store, campaign, target);
  const delivered = await markFileDelivered(store, campaign, target, new Date());
  return { target, delivered, lines };
}
