import { seededRandom } from "../../src/campaigns/random.js";
import type { Store } from "../../src/store/db.js";
import type { ScoreRow } from "../../src/store/runs.js";

export const BANDS = [
  { name: "high", min: 0.6 },
  { name: "medium", min: 0.3 },
  { name: "low", min: 0 },
];

export function bandOf(p: number): string {
  return (BANDS.find((b) => p >= b.min) ?? { name: "low" }).name;
}

export interface SeededRun {
  runId: string;
  asOf: string;
  customers: { id: string; probability: number; band: string }[];
}

/**
 * A complete score run written straight into the store: `n` customers `c00001…` with seeded probabilities,
 * banded like a real bundle (high ≥ 0.6, medium ≥ 0.3). Lets campaign tests run without a trained model.
 */
export async function seedRun(
  store: Store,
  options: { n: number; asOf: string; seed?: number; version?: string; ids?: readonly string[] },
): Promise<SeededRun> {
  const version = options.version ?? "1";
  const runId = `daily-${options.asOf}-churn-v${version}`;
  const random = seededRandom(options.seed ?? 1);
  const now = `${options.asOf}T06:00:00.000Z`;
  await store.db
    .insertInto("score_runs")
    .values({
      run_id: runId,
      kind: "daily",
      as_of: options.asOf,
      model_name: "churn",
      model_version: version,
      source: "seeded",
      status: "complete",
      started_at: now,
      finished_at: now,
      rows_read: options.n,
      rows_scored: options.n,
      rows_quarantined: 0,
      checkpoint_rows: options.n,
      duration_ms: 1,
      error: null,
      lease_owner: null,
      lease_expires_at: null,
    })
    .execute();
  const customers: SeededRun["customers"] = [];
  const rows: ScoreRow[] = [];
  for (let i = 1; i <= options.n; i++) {
    const probability = random() ** 1.5;
    const id = options.ids?.[i - 1] ?? `c${String(i).padStart(5, "0")}`;
    const band = bandOf(probability);
    customers.push({ id, probability, band });
    rows.push({
      run_id: runId,
      customer_id: id,
      probability,
      band,
      decision: probability >= 0.35 ? 1 : 0,
      model_name: "churn",
      model_version: version,
      scored_at: now,
    });
  }
  for (let i = 0; i < rows.length; i += 1000)
    await store.db
      .insertInto("scores")
      .values(rows.slice(i, i + 1000))
      .execute();
  return { runId, asOf: options.asOf, customers };
}
