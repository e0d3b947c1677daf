import type { Store } from "../store/db.js";
import { indexRunIds } from "../store/id-search.js";
import { type RunStats, runStats } from "../store/read/overview.js";

/**
 * Band counts and the distribution of a complete run, read once per process: they never change after the run
 * completes, and reading them is a pass over every score of the run (a million rows in the largest stores).
 */
export class RunStatsCache {
  private readonly entries = new Map<string, Promise<RunStats>>();

  constructor(
    private readonly store: Store,
    private readonly capacity = 16,
  ) {}

  get(runId: string): Promise<RunStats> {
    const hit = this.entries.get(runId);
    if (hit !== undefined) return hit;
    const loading = runStats(this.store, runId);
    this.entries.set(runId, loading);
    // The cache holds complete runs only; their ids go into the id search's index now, in the background,
    // so that the first search of the run does not wait for it (src/store/id-search.ts). A failure here only
    // means the first search builds it.
    loading.then(() => indexRunIds(this.store, runId)).catch(() => undefined);
    // A failed read is not kept; the oldest entry makes room for a new one.
    loading.catch(() => this.entries.delete(runId));
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return loading;
  }
}
