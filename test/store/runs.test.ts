import { hostname } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import {
  bandCounts,
  finishRun,
  getRun,
  iterateScores,
  processOwner,
  resolveRun,
  type ScoreColumns,
  scoredCustomerIds,
  startOrResumeRun,
  writeChunk,
} from "../../src/store/runs.js";
import { storeTargets } from "../helpers/stores.js";

const key = { kind: "daily" as const, asOf: "2026-11-01", modelName: "churn", modelVersion: "3", source: "test.parquet" };

function scores(runId: string, ids: string[]): ScoreColumns {
  return {
    runId,
    modelName: "churn",
    modelVersion: "3",
    scoredAt: "2026-11-01T00:00:00.000Z",
    customerIds: ids,
    probabilities: ids.map((_, i) => i / 10),
    bands: ids.map((_, i) => (i > 5 ? "high" : "low")),
    decisions: ids.map((_, i) => (i > 5 ? 1 : 0)),
  };
}

describe.each(storeTargets)("score runs on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it("gives the same run back for the same kind, date and model, so a re-run cannot duplicate it", async () => {
    store = await openStore(await target.fresh());
    const a = await startOrResumeRun(store, key);
    const b = await startOrResumeRun(store, key);
    expect(a.run_id).toBe("daily-2026-11-01-churn-v3");
    expect(b.run_id).toBe(a.run_id);
    const other = await startOrResumeRun(store, { ...key, modelVersion: "4" });
    expect(other.run_id).not.toBe(a.run_id);
  });

  it("commits scores, quarantine and checkpoint together and ignores a chunk written twice", async () => {
    store = await openStore(await target.fresh());
    const run = await startOrResumeRun(store, key);
    const chunk = {
      scores: scores(run.run_id, ["a", "b", "c", "d", "e", "f", "g"]),
      quarantine: [{ run_id: run.run_id, row_number: 8, customer_id: "h", reason: "tenure_months: -1 is below the minimum 0" }],
      checkpointRows: 8,
    };
    await writeChunk(store, run.run_id, chunk);
    const after = await getRun(store, run.run_id);
    expect(after).toMatchObject({ checkpoint_rows: 8, rows_scored: 7, rows_quarantined: 1 });
    expect(await bandCounts(store, run.run_id)).toEqual({ low: 6, high: 1 });
    const resumed = await startOrResumeRun(store, key);
    expect(resumed.checkpoint_rows).toBe(8);
    await writeChunk(store, run.run_id, chunk);
    const n = await store.db
      .selectFrom("scores")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(7);
  });

  it("keeps each customer's own probability, band and decision when a chunk's ids are out of order", async () => {
    // SQLite writes a chunk in id order (index locality); every value must still travel with its own customer.
    store = await openStore(await target.fresh());
    const run = await startOrResumeRun(store, key);
    // Ids with the characters an array literal or a statement must escape ride along (PostgreSQL binds arrays).
    const odd = ['q"uote', "com,ma", "{brace}", "back\\slash", "NULL", " spaced ", "é-ü"];
    const ids = Array.from({ length: 200 }, (_, i) => (i < odd.length ? (odd[i] as string) : `c${String((i * 73) % 200).padStart(3, "0")}`));
    const chunk = scores(run.run_id, ids);
    await writeChunk(store, run.run_id, { scores: chunk, quarantine: [], checkpointRows: 200 });
    const stored = await store.db.selectFrom("scores").select(["customer_id", "probability", "band", "decision"]).where("run_id", "=", run.run_id).execute();
    expect(stored).toHaveLength(200);
    const expected = ids.map((id, i) => ({ customer_id: id, probability: i / 10, band: chunk.bands[i], decision: chunk.decisions[i] }));
    const byId = (a: { customer_id: string }, b: { customer_id: string }) => a.customer_id.localeCompare(b.customer_id);
    expect(stored.map((r) => ({ ...r, probability: Number(r.probability), decision: Number(r.decision) })).sort(byId)).toEqual(expected.sort(byId));
  });

  it("resolves `latest` to the newest complete run and says so when there is none", async () => {
    store = await openStore(await target.fresh());
    await expect(resolveRun(store, "latest")).rejects.toThrow(/no complete score run/);
    const run = await startOrResumeRun(store, key);
    await finishRun(store, run.run_id, { status: "complete", durationMs: 5 });
    const later = await startOrResumeRun(store, { ...key, asOf: "2026-11-02" });
    await finishRun(store, later.run_id, { status: "complete", durationMs: 5 });
    expect((await resolveRun(store, "latest")).run_id).toBe("daily-2026-11-02-churn-v3");
    await expect(resolveRun(store, "nope")).rejects.toThrow(/no score run nope/);
  });

  it("pages through a run's scores in customer order without skipping any", async () => {
    store = await openStore(await target.fresh());
    const run = await startOrResumeRun(store, key);
    const ids = Array.from({ length: 25 }, (_, i) => `c${String(i).padStart(3, "0")}`);
    await writeChunk(store, run.run_id, { scores: scores(run.run_id, ids), quarantine: [], checkpointRows: 25 });
    const seen: string[] = [];
    for await (const page of iterateScores(store, run.run_id, 7)) seen.push(...page.map((s) => s.customer_id));
    expect(seen).toEqual(ids);
  });

  it("says which of the asked ids a run has scored, over more ids than one lookup takes, and in that run only", async () => {
    store = await openStore(await target.fresh());
    const run = await startOrResumeRun(store, key);
    const other = await startOrResumeRun(store, { ...key, modelVersion: "4" });
    await writeChunk(store, run.run_id, { scores: scores(run.run_id, ["a", "b", "c"]), quarantine: [], checkpointRows: 3 });
    await writeChunk(store, other.run_id, { scores: scores(other.run_id, ["d"]), quarantine: [], checkpointRows: 1 });
    const asked = [...Array.from({ length: 2500 }, (_, i) => `x${i}`), "c", "d", "a"];
    expect([...(await scoredCustomerIds(store, run.run_id, asked))].sort()).toEqual(["a", "c"]);
    expect(await scoredCustomerIds(store, run.run_id, [])).toEqual(new Set());
  });
});

describe("claims on unfinished runs", () => {
  it("refuses a second scorer while the first holds the run, and lets it take over a dead owner's run", async () => {
    const target = storeTargets[0] as (typeof storeTargets)[number];
    const store = await openStore(await target.fresh());
    try {
      const run = await startOrResumeRun(store, key);
      // Someone else, alive, on another host: the claim holds.
      await store.db
        .updateTable("score_runs")
        .set({ lease_owner: "elsewhere/1/abcd1234", lease_expires_at: new Date(Date.now() + 60_000).toISOString() })
        .where("run_id", "=", run.run_id)
        .execute();
      await expect(startOrResumeRun(store, key)).rejects.toThrow(/is being scored by elsewhere\/1\/abcd1234/);
      await expect(writeChunk(store, run.run_id, { scores: scores(run.run_id, []), quarantine: [], checkpointRows: 1 })).rejects.toThrow(/taken over/);
      // A process on this host that no longer exists: taken over at once.
      await store.db
        .updateTable("score_runs")
        .set({ lease_owner: `${hostname()}/999999999/gone1234` })
        .where("run_id", "=", run.run_id)
        .execute();
      const resumed = await startOrResumeRun(store, key);
      expect(resumed.lease_owner).toBe(processOwner());
      expect(processOwner().startsWith(`${hostname()}/${process.pid}/`)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
