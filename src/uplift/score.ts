import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../config.js";
import { openSource } from "../data/source.js";
import { snapshotFiles } from "../dataset/snapshots.js";
import { ChurnopsError } from "../errors.js";
import { trainerJson } from "../model/trainer.js";
import type { Store } from "../store/db.js";
import type { ScoreRun } from "../store/runs.js";

/** What the uplift model predicted for a run's customers, and which registered version predicted it. */
export interface UpliftScores {
  modelName: string;
  modelVersion: string;
  uplift: Map<string, number>;
}

/** The snapshot a run scored (the daily job's kept copy of that date, or the run's own file while unchanged). */
export async function runSnapshot(store: Store, run: ScoreRun): Promise<string> {
  const { files, skipped } = await snapshotFiles(store, { from: run.as_of, to: run.as_of });
  const file = files.find((f) => f.date === run.as_of);
  if (file === undefined)
    throw new ChurnopsError(
      "data_not_found",
      `the features of run ${run.run_id} (${run.as_of}) cannot be read for uplift scoring: ${skipped.find((s) => s.date === run.as_of)?.reason ?? "no snapshot of that date"}`,
      { field: "run" },
    );
  return file.path;
}

/**
 * Predicted uplift for every customer of a run's snapshot, from a registered uplift model (an alias or a version
 * of `modelName`). The trainer resolves the version and verifies the bundle (sha256, registered digest and
 * signature, golden vectors) before it scores a row.
 */
export async function scoreRunUplift(
  store: Store,
  config: Config,
  run: ScoreRun,
  options: { modelName: string; model: string; idColumn: string },
): Promise<UpliftScores> {
  const data = await runSnapshot(store, run);
  const dir = mkdtempSync(join(tmpdir(), "churnops-uplift-"));
  const out = join(dir, "uplift.parquet");
  try {
    const res = await trainerJson<{ version: string; rows: number }>(config, [
      "uplift-score",
      "--model-name",
      options.modelName,
      "--model",
      options.model,
      "--data",
      data,
      "--id-col",
      options.idColumn,
      "--out",
      out,
    ]);
    const uplift = new Map<string, number>();
    const reader = await openSource({ data: out });
    try {
      for await (const chunk of reader.chunks({ columns: ["customer_id", "uplift"], chunkSize: 65_536, skipRows: 0 })) {
        const ids = chunk.columns.get("customer_id") ?? [];
        const values = chunk.columns.get("uplift") ?? [];
        for (let i = 0; i < chunk.size; i++) {
          const v = Number(values[i]);
          if (ids[i] !== null && ids[i] !== undefined && Number.isFinite(v)) uplift.set(String(ids[i]), v);
        }
      }
    } finally {
      await reader.close();
    }
    return { modelName: options.modelName, modelVersion: String(res.version), uplift };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
