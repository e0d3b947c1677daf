import { sql } from "kysely";
import { z } from "zod";
import { runBands } from "../campaigns.js";
import type { Store } from "../db.js";
import { type AlertRow, listAlerts } from "../monitoring.js";
import type { ScoreRun } from "../runs.js";
import { scoresOfRun } from "../runs.js";

/** Bins of the risk distribution (probability 0-1 in equal steps). */
export const RISK_BINS = 20;

export interface BandCount {
  band: string;
  n: number;
  /** Change in customers since the previous run (null when there is none). */
  change: number | null;
}

export interface Overview {
  latest: ScoreRun | null;
  previous: ScoreRun | null;
  bands: BandCount[];
  /** Customers per probability bin, `RISK_BINS` of them. */
  distribution: number[];
  meanProbability: number | null;
  previousMeanProbability: number | null;
  openAlerts: AlertRow[];
  inFlight: { campaign: string; pending: number }[];
}

async function latestRuns(store: Store): Promise<[ScoreRun | null, ScoreRun | null]> {
  const runs = await store.db
    .selectFrom("score_runs")
    .selectAll()
    .where("status", "=", "complete")
    .orderBy("as_of", "desc")
    .orderBy("started_at", "desc")
    .limit(2)
    .execute();
  return [runs[0] ?? null, runs[1] ?? null];
}

const binRow = z.object({ bin: z.coerce.number().int(), n: z.coerce.number() });

/** Customers per probability bin in one pass over the run. */
export async function riskDistribution(store: Store, runId: string): Promise<number[]> {
  // PostgreSQL's integer cast rounds and SQLite's truncates; floor/least and cast/min both give the bin below.
  const bin =
    store.dialect === "postgres"
      ? sql<number>`least(floor(probability * ${RISK_BINS})::int, ${RISK_BINS - 1})`
      : sql<number>`min(cast(probability * ${RISK_BINS} as integer), ${RISK_BINS - 1})`;
  const rows = await store.db
    .selectFrom("scores")
    .select([bin.as("bin"), (eb) => eb.fn.countAll<number>().as("n")])
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .groupBy(sql`1`)
    .execute();
  const bins = new Array<number>(RISK_BINS).fill(0);
  for (const r of rows.map((row) => binRow.parse(row))) bins[r.bin] = r.n;
  return bins;
}

async function meanProbability(store: Store, runId: string): Promise<number | null> {
  const row = await store.db
    .selectFrom("scores")
    .select((eb) => eb.fn.avg<number>("probability").as("mean"))
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .executeTakeFirst();
  return row?.mean === null || row?.mean === undefined ? null : Number(row.mean);
}

/** Campaigns with messages still waiting to go out. */
async function campaignsInFlight(store: Store): Promise<{ campaign: string; pending: number }[]> {
  const rows = await store.db
    .selectFrom("campaign_messages")
    .select(["campaign", (eb) => eb.fn.countAll<number>().as("pending")])
    .where("state", "in", ["pending", "sending"])
    .groupBy("campaign")
    .orderBy("campaign")
    .execute();
  return rows.map((r) => ({ campaign: r.campaign, pending: Number(r.pending) }));
}

/** What a run's customers look like: counts per band, the distribution, the mean. A complete run never changes. */
export interface RunStats {
  bands: { band: string; min: number; n: number }[];
  distribution: number[];
  meanProbability: number | null;
}

export async function runStats(store: Store, runId: string): Promise<RunStats> {
  const [bands, distribution, mean] = await Promise.all([runBands(store, runId), riskDistribution(store, runId), meanProbability(store, runId)]);
  return { bands, distribution, meanProbability: mean };
}

/**
 * Everything the overview page shows, read once. Alerts are "open" for the 7 days after they were raised.
 * `stats` lets a caller reuse the numbers of a run it has already read (complete runs never change).
 */
export async function overview(store: Store, options: { now?: Date; stats?: (runId: string) => Promise<RunStats> } = {}): Promise<Overview> {
  const stats = options.stats ?? ((runId: string) => runStats(store, runId));
  const [latest, previous] = await latestRuns(store);
  const since = new Date((options.now ?? new Date()).getTime() - 7 * 86_400_000).toISOString();
  const [openAlerts, inFlight] = await Promise.all([listAlerts(store, { since, limit: 20 }), campaignsInFlight(store)]);
  if (latest === null) return { latest, previous, bands: [], distribution: [], meanProbability: null, previousMeanProbability: null, openAlerts, inFlight };
  const [now, before] = await Promise.all([stats(latest.run_id), previous === null ? Promise.resolve(null) : stats(previous.run_id)]);
  const beforeByBand = new Map((before?.bands ?? []).map((b) => [b.band, b.n]));
  return {
    latest,
    previous,
    bands: now.bands.map((b) => ({ band: b.band, n: b.n, change: before === null ? null : b.n - (beforeByBand.get(b.band) ?? 0) })),
    distribution: now.distribution,
    meanProbability: now.meanProbability,
    previousMeanProbability: before?.meanProbability ?? null,
    openAlerts,
    inFlight,
  };
}
