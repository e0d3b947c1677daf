import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { csvCell } from "../csv-safe.js";
import { previousMonthlyRun } from "../store/daily.js";
import type { Store } from "../store/db.js";
import { bandCounts, iterateScores, topScores } from "../store/runs.js";

export interface RiskReview {
  date: string;
  runId: string;
  customers: number;
  /** Ten equal-width probability bins, [0, 0.1) … [0.9, 1]. */
  histogram: { from: number; to: number; customers: number }[];
  mean: number;
  quantiles: { p50: number; p90: number; p99: number };
  bands: Record<string, { now: number; lastMonth: number | null; change: number | null }>;
  previousRunId: string | null;
  topRiskCsv: string;
  json: string;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * The monthly risk review: how scores are distributed, band counts against last month's monthly run, and the
 * top-risk customers as CSV. Both files are rewritten whole (temporary file + rename), so a re-run replaces
 * them rather than adding to them.
 */
export async function writeRiskReview(
  store: Store,
  options: { runId: string; modelName: string; date: string; dir: string; top: number },
): Promise<RiskReview> {
  const probabilities: number[] = [];
  for await (const page of iterateScores(store, options.runId)) for (const s of page) probabilities.push(Number(s.probability));
  const sorted = Float64Array.from(probabilities).sort();
  const histogram = Array.from({ length: 10 }, (_, i) => ({ from: i / 10, to: (i + 1) / 10, customers: 0 }));
  let sum = 0;
  for (const p of sorted) {
    sum += p;
    (histogram[Math.min(9, Math.floor(p * 10))] as { customers: number }).customers++;
  }
  const now = await bandCounts(store, options.runId);
  const previous = await previousMonthlyRun(store, options.modelName, options.date);
  const before = previous === undefined ? null : await bandCounts(store, previous.run_id);
  const bands: RiskReview["bands"] = {};
  for (const band of new Set([...Object.keys(now), ...Object.keys(before ?? {})])) {
    const n = now[band] ?? 0;
    const last = before === null ? null : (before[band] ?? 0);
    bands[band] = { now: n, lastMonth: last, change: last === null ? null : n - last };
  }
  const top = await topScores(store, options.runId, options.top);
  const csvPath = join(options.dir, `risk-review-${options.date}-top.csv`);
  writeAtomically(
    csvPath,
    `rank,customer_id,probability,band,model_version,run_id\n${top
      .map((s, i) => [String(i + 1), csvCell(s.customer_id), String(s.probability), csvCell(s.band), csvCell(s.model_version), csvCell(s.run_id)].join(","))
      .join("\n")}${top.length > 0 ? "\n" : ""}`,
  );
  const jsonPath = join(options.dir, `risk-review-${options.date}.json`);
  const review: RiskReview = {
    date: options.date,
    runId: options.runId,
    customers: sorted.length,
    histogram,
    mean: sorted.length === 0 ? 0 : sum / sorted.length,
    quantiles: { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99) },
    bands,
    previousRunId: previous?.run_id ?? null,
    topRiskCsv: csvPath,
    json: jsonPath,
  };
  writeAtomically(jsonPath, `${JSON.stringify(review, null, 2)}\n`);
  return review;
}
