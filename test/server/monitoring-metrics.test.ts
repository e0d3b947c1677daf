import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { openStore } from "../../src/store/db.js";
import { startApp } from "./helpers.js";

const fixture = inject("fixture");

describe("the API's /metrics with a store", () => {
  it("also shows the last batch run (rows, model version) read from the store the API logs to", async () => {
    const store = await openStore(`sqlite://${join(mkdtempSync(join(tmpdir(), "churnops-api-metrics-")), "s.db")}`);
    const model = await ChurnModel.load(fixture.bundleDir);
    await scoreBatch({ source: { data: fixture.dataPath }, model, kind: "daily", asOf: "2026-11-20", store, chunkSize: 1000, badRows: "quarantine" });
    await model.close();
    const t = await startApp({ store });
    try {
      const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
      expect(text).toMatch(/churnops_batch_rows\{kind="daily",outcome="scored"\} 4000/);
      expect(text).toMatch(new RegExp(`churnops_batch_model_info\\{kind="daily",name="churn",version="${fixture.version}"\\} 1`));
    } finally {
      await t.close();
      await store.close();
    }
  });
});
