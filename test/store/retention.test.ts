import { describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { applyPrune, monthsBefore, planPrune, type RetentionPolicy } from "../../src/store/retention.js";
import { getRun, requireScores } from "../../src/store/runs.js";
import { runCli } from "../helpers/cli.js";
import { completeRun, countRows, storeTargets } from "../helpers/stores.js";

const TODAY = "2026-12-01";

async function addRun(store: Store, kind: "daily" | "monthly", asOf: string, scores = 3, finishedAt = `${asOf}T01:00:00.000Z`): Promise<string> {
  const runId = `${kind}-${asOf}-churn-v1`;
  // One more row read than scored: the quarantined one below.
  await store.db
    .insertInto("score_runs")
    .values({
      ...completeRun({ runId, kind, asOf, rows: scores }),
      rows_read: scores + 1,
      rows_quarantined: 1,
      checkpoint_rows: scores + 1,
      finished_at: finishedAt,
    })
    .execute();
  const rows = Array.from({ length: scores }, (_, i) => i);
  for (let at = 0; at < rows.length; at += 1000)
    await store.db
      .insertInto("scores")
      .values(
        rows.slice(at, at + 1000).map((i) => ({
          run_id: runId,
          customer_id: `C${i}`,
          probability: 0.5,
          band: "high",
          decision: 1,
          model_name: "churn",
          model_version: "1",
          scored_at: asOf,
        })),
      )
      .execute();
  await store.db
    .insertInto("quarantine")
    .values({ run_id: runId, row_number: scores + 1, customer_id: null, reason: "customer_id: the customer id is empty" })
    .execute();
  return runId;
}

async function addPrediction(store: Store, id: string, createdAt: string): Promise<void> {
  await store.db
    .insertInto("predictions")
    .values({
      id,
      request_id: id,
      customer_id: "C1",
      variant: "champion",
      model_name: "churn",
      model_version: "1",
      probability: 0.4,
      band: "medium",
      decision: 0,
      latency_ms: 1,
      shadow: 0,
      created_at: createdAt,
    })
    .execute();
}

const policy = (over: Partial<RetentionPolicy> = {}): RetentionPolicy => ({
  keepDailyDays: 30,
  keepMonthlyMonths: 12,
  keepPredictionsDays: 14,
  horizonDays: 90,
  alertOpenDays: 30,
  today: TODAY,
  ...over,
});

describe("months back, day for day", () => {
  it("moves to the month's last day when the day does not exist there", () => {
    expect(monthsBefore("2026-12-01", 12)).toBe("2025-12-01");
    expect(monthsBefore("2026-03-31", 1)).toBe("2026-02-28");
    expect(monthsBefore("2026-01-15", 2)).toBe("2025-11-15");
  });
});

describe.each(storeTargets)("retention on $name", (target) => {
  it("prunes old runs' scores and old predictions, and keeps every run a campaign, an open alert, monitoring or the risk list needs", async () => {
    const store = await openStore(await target.fresh());
    try {
      const oldDaily = await addRun(store, "daily", "2026-06-01");
      const planned = await addRun(store, "daily", "2026-06-02");
      const alerted = await addRun(store, "daily", "2026-06-03");
      const staleAlert = await addRun(store, "daily", "2026-06-04");
      const labelling = await addRun(store, "daily", "2026-09-15");
      const recent = await addRun(store, "daily", "2026-11-20");
      const oldMonthly = await addRun(store, "monthly", "2025-06-01");
      // The only monthly run that is complete: the risk list reads it, however old.
      const lastMonthly = await addRun(store, "monthly", "2025-07-01");
      await store.db
        .insertInto("campaigns")
        .values({
          name: "winback",
          run_id: planned,
          as_of: "2026-06-02",
          model_name: "churn",
          model_version: "1",
          rule: "{}",
          ranking: "risk",
          params: "{}",
          seed: 1,
          budget: null,
          control_share: 0.2,
          cooldown_days: 30,
          offer: null,
          offer_cost: null,
          counts: "{}",
          treated: 0,
          control: 0,
          planned_at: "2026-06-02T00:00:00.000Z",
        } as never)
        .execute();
      const alert = (key: string, runId: string, day: string) => ({
        key,
        rule: "drift.feature",
        severity: "warn" as const,
        subject: "tenure",
        day,
        message: "m",
        details: "{}",
        model_name: "churn",
        model_version: "1",
        run_id: runId,
        created_at: `${day}T00:00:00.000Z`,
        delivery_attempts: 0,
        delivered_at: null,
        delivery_error: null,
      });
      await store.db
        .insertInto("alerts")
        .values([alert("a1", alerted, "2026-11-25"), alert("a2", staleAlert, "2026-07-01")])
        .execute();
      await addPrediction(store, "p-old", "2026-11-01T10:00:00.000Z");
      await addPrediction(store, "p-new", "2026-11-30T10:00:00.000Z");

      const plan = await planPrune(store, policy());
      expect(plan.prune.map((r) => r.run_id).sort()).toEqual([oldDaily, oldMonthly, staleAlert].sort());
      expect(Object.fromEntries(plan.kept.map((k) => [k.run_id, k.reason]))).toEqual({
        [planned]: "campaign winback was planned from it",
        [alerted]: "alert drift.feature of 2026-11-25 names it (open for 30 days)",
        [labelling]: "its outcome horizon (90 days) ends 2026-12-14: realised performance still needs its scores",
        [lastMonthly]: "the latest complete monthly run",
      });
      expect(plan.predictions).toEqual({ before: "2026-11-17", rows: 1 });
      expect(plan.prune.find((r) => r.run_id === recent)).toBeUndefined();

      const before = await countRows(store, "scores");
      const removed = await applyPrune(store, plan);
      expect(removed).toEqual({ runs: 3, scores: 9, quarantined: 3, predictions: 1 });
      expect(await countRows(store, "scores")).toBe(before - 9);
      expect(await countRows(store, "score_runs")).toBe(8);
      const pruned = await getRun(store, oldDaily);
      expect(pruned.pruned_at).not.toBeNull();
      expect(pruned.rows_scored).toBe(3);
      expect(() => requireScores(pruned)).toThrow(`run ${oldDaily}'s scores were pruned`);
      const left = await store.db.selectFrom("scores").select("run_id").distinct().orderBy("run_id").execute();
      expect(left.map((r) => r.run_id)).toEqual([alerted, planned, labelling, recent, lastMonthly].sort());
      expect((await store.db.selectFrom("predictions").select("id").execute()).map((p) => p.id)).toEqual(["p-new"]);
      // Nothing more to do the second time.
      expect((await planPrune(store, policy())).prune).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("removes a big run's scores in bounded chunks, every one of them", async () => {
    const store = await openStore(await target.fresh());
    try {
      await addRun(store, "daily", "2026-01-01", 45_000);
      await addRun(store, "daily", "2026-11-30", 2);
      const removed = await applyPrune(store, await planPrune(store, policy()));
      expect(removed.scores).toBe(45_000);
      expect(await countRows(store, "scores")).toBe(2);
    } finally {
      await store.close();
    }
  });

  it("prune --dry-run says what would go and removes nothing; without a policy it says what to give", async () => {
    const url = await target.fresh();
    const store = await openStore(url);
    try {
      const old = await addRun(store, "daily", "2026-01-01");
      await addRun(store, "daily", "2026-11-30", 2);
      const env = { CHURNOPS_DB_URL: url };
      const dry = await runCli(["prune", "--keep-daily", "30", "--today", TODAY, "--dry-run"], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain("Would prune the scores of 1 runs (3 scores):");
      expect(dry.stdout).toContain(old);
      expect(await countRows(store, "scores")).toBe(5);
      const none = await runCli(["prune"], env);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/nothing to prune: give --keep-daily DAYS/);
      const done = await runCli(["prune", "--keep-daily", "30", "--today", TODAY, "--json"], env);
      expect(JSON.parse(done.stdout)).toMatchObject({ dry_run: false, removed: { runs: 1, scores: 3 } });
      expect(await countRows(store, "scores")).toBe(2);
      const listed = await runCli(["runs"], env);
      expect(listed.stdout).toMatch(new RegExp(`${old}\\s+complete, pruned`));
    } finally {
      await store.close();
    }
  });
});
