import { inject } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import type { Store } from "../../src/store/db.js";
import type { CategoricalFeature } from "../../src/store/score-features.js";
import { storedCategoricalFeatures } from "../../src/store/score-features.js";

/**
 * The trained fixture's customers scored into `store` with `reasons` top reasons each, as `churnops score
 * --reasons N` does (the registered v1 model, so the console finds its bundle in `registryConfig`'s registry).
 */
export async function scoreFixtureRun(store: Store, reasons: number): Promise<{ runId: string; categorical: CategoricalFeature[] }> {
  const fixture = inject("fixture");
  const model = await ChurnModel.load(fixture.bundleDir);
  try {
    const summary = await scoreBatch({
      source: { data: fixture.dataPath },
      model,
      kind: "daily",
      asOf: "2026-11-20",
      store,
      chunkSize: 1000,
      badRows: "quarantine",
      reasons,
    });
    return { runId: summary.runId, categorical: storedCategoricalFeatures(model.bundle) };
  } finally {
    await model.close();
  }
}
