import { existsSync, statSync } from "node:fs";
import type { InputIdentity } from "../data/input-identity.js";
import { completeRunInputs, keptSnapshots, type Window } from "../store/datasets.js";
import type { Store } from "../store/db.js";

/** A snapshot a training set can read: its date, the file holding it, and where that file came from. */
export interface SnapshotFile {
  date: string;
  path: string;
  /** `kept`: the daily job's copy; `run`: the file a complete score run read, unchanged since. */
  origin: "kept" | "run";
  run_id: string | null;
}

export interface SkippedSnapshot {
  date: string;
  run_id: string;
  reason: string;
}

/**
 * The snapshots in a window, one per date: the daily job's kept copy when there is one, otherwise the file a
 * complete score run of that date read, but only while it is provably the same file (same size and modification
 * time as the run recorded): a file overwritten by a later day's export would put later features under an earlier
 * date, which is exactly the leak a point-in-time set exists to prevent. Dates that cannot be read are skipped
 * with the reason.
 */
export async function snapshotFiles(store: Store, window: Window): Promise<{ files: SnapshotFile[]; skipped: SkippedSnapshot[] }> {
  const files = new Map<string, SnapshotFile>();
  for (const k of await keptSnapshots(store, window)) files.set(k.date, { date: k.date, path: k.path, origin: "kept", run_id: k.run_id });
  const reasons = new Map<string, SkippedSnapshot>();
  for (const run of await completeRunInputs(store, window)) {
    if (files.has(run.as_of)) continue;
    const why = unreadable(run.input);
    if (why === null) {
      const id = JSON.parse(run.input as string) as InputIdentity;
      files.set(run.as_of, { date: run.as_of, path: id.location, origin: "run", run_id: run.run_id });
      reasons.delete(run.as_of);
    } else if (!reasons.has(run.as_of)) reasons.set(run.as_of, { date: run.as_of, run_id: run.run_id, reason: why });
  }
  const byDate = (a: { date: string }, b: { date: string }) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0);
  return { files: [...files.values()].sort(byDate), skipped: [...reasons.values()].filter((s) => !files.has(s.date)).sort(byDate) };
}

/** Why a run's recorded input cannot be read back as the snapshot it scored; null when it can. */
function unreadable(input: string | null): string | null {
  if (input === null) return "the run predates input records (migration 006), so its file cannot be verified";
  const id = JSON.parse(input) as InputIdentity;
  if (id.kind !== "file")
    return `the run read a database (${id.location}${id.relation === null ? "" : ` [${id.relation}]`}), which holds today's rows, not that day's; only a kept snapshot has them`;
  if (!/\.(parquet|pq|csv|tsv|txt)(\.gz)?$/i.test(id.location)) return `${id.location} is neither Parquet nor CSV`;
  if (!existsSync(id.location)) return `${id.location} is gone (moved or deleted since the run read it)`;
  const stat = statSync(id.location);
  if (stat.size !== id.size || stat.mtime.toISOString() !== id.modified)
    return `${id.location} changed since the run read it (${id.size} bytes modified ${id.modified}; now ${stat.size} bytes modified ${stat.mtime.toISOString()})`;
  return null;
}
