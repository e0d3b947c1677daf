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
] as const;

export function fileTarget(path: string): string {
  return `file:${resolve(path)}`;
}

export function targetPath(target: string): string {
  return target.slice("file:".length);
}

function formatLine(row: MessageRow, csv: boolean): string {
  const payload = JSON.parse(row.payload) as Record<string, unknown>;
  if (!csv) return `${row.payload}\n`;
  return `${EXPORT_COLUMNS.map((c) => csvCell(payload[c])).join(",")}\n`;
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
    if (csv) writeSync(fd, `${EXPORT_COLUMNS.join(",")}\n`);
    for await (const page of fileMessages(store, campaign, target)) {
      writeSync(fd, page.map((row) => formatLine(row, csv)).join(""));
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
