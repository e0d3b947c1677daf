import { z } from "zod";
import { listDailyRuns } from "../daily.js";
import type { Store } from "../db.js";
import { listRuns, type QuarantineRow, quarantined, type ScoreRun } from "../runs.js";

export const dailyRunViewSchema = z.object({
  date: z.string(),
  kind: z.string(),
  status: z.string(),
  attempts: z.coerce.number(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  error: z.string().nullable(),
  /** The job's summary, decoded; null while it runs or when it failed. */
  summary: z.record(z.string(), z.unknown()).nullable(),
});
export type DailyRunView = z.infer<typeof dailyRunViewSchema>;

export interface RunsView {
  runs: ScoreRun[];
  daily: DailyRunView[];
}

export async function runsView(store: Store, limit = 50): Promise<RunsView> {
  const [runs, daily] = await Promise.all([listRuns(store, limit), listDailyRuns(store, limit)]);
  return {
    runs: runs.map((r) => ({ ...r, rows_read: Number(r.rows_read), rows_scored: Number(r.rows_scored), rows_quarantined: Number(r.rows_quarantined) })),
    daily: daily.map((d) => dailyRunViewSchema.parse({ ...d, summary: d.summary === null ? null : (JSON.parse(d.summary) as unknown) })),
  };
}

/** The quarantined rows of a run with their reasons, in input order. */
export async function quarantineView(store: Store, runId: string, limit = 500): Promise<QuarantineRow[]> {
  return (await quarantined(store, runId, limit)).map((q) => ({ ...q, row_number: Number(q.row_number) }));
}
