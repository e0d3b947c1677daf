import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type PlanRequest, planCampaign } from "../../src/campaigns/plan.js";
import { seededRandom } from "../../src/campaigns/random.js";
import { campaignReport } from "../../src/campaigns/report.js";
import { selectUpliftMembers, type UpliftCandidate } from "../../src/campaigns/uplift-select.js";
import { isChurnopsError } from "../../src/errors.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { keepSnapshotRecord } from "../../src/store/datasets.js";
import { openStore, type Store } from "../../src/store/db.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { campaignUpliftMembers } from "../../src/store/uplift.js";
import { exportUpliftData } from "../../src/uplift/data.js";
import { storeTargets } from "../helpers/stores.js";
import { BANDS, seedRun } from "./seed.js";

const none = { cooldown: new Set<string>(), optedOut: new Set<string>(), churned: new Set<string>() };

/** `n` candidates with seeded risk and uplift; a third of them have a negative predicted uplift. */
function candidates(n: number, seed = 1): UpliftCandidate[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => ({
    customerId: `c${String(i).padStart(5, "0")}`,
    probability: random(),
    band: i % 2 === 0 ? "high" : "low",
    modelVersion: "1",
    value: null,
    uplift: random() * 0.3 - 0.1,
  }));
}

const options = { budget: 300, controlShare: 0.2, explorationShare: 0.1, seed: 7, offerCost: 0, withValues: false };

describe("uplift selection", () => {
  it("never treats a customer with negative predicted uplift, and counts them", () => {
    const all = candidates(3000);
    for (const o of [options, { ...options, budget: null }, { ...options, explorationShare: 0.5, seed: 99 }, { ...options, budget: 2500 }]) {
      const { members, counts } = selectUpliftMembers(all, none, o);
      expect(members.filter((m) => m.uplift < 0)).toEqual([]);
      expect(counts.sleepingDogs).toBe(all.filter((c) => (c.uplift as number) < 0).length);
      expect(counts.sleepingDogs).toBeGreaterThan(600);
      if (o.budget !== null) expect(counts.treated).toBeLessThanOrEqual(o.budget);
    }
  });

  it("spends the budget: the exploration share of the treated at random, the rest by uplift, each with its control group", () => {
    const all = candidates(3000);
    const { members, counts } = selectUpliftMembers(all, none, options);
    expect(counts.treated).toBe(300);
    expect(counts.exploration.treated).toBe(30);
    expect(counts.ranking.treated).toBe(270);
    const ranked = members.filter((m) => m.selectedBy === "ranking");
    const explore = members.filter((m) => m.selectedBy === "exploration");
    expect(counts.ranking.control).toBe(Math.round(ranked.length * 0.2));
    expect(counts.exploration.control).toBe(Math.round(explore.length * 0.2));
    // Ranking takes the highest predicted uplift; exploration reaches far below its cut-off.
    const cutoff = Math.min(...ranked.map((m) => m.uplift));
    expect(explore.filter((m) => m.uplift < cutoff).length).toBeGreaterThan(explore.length / 2);
  });

  it("draws control and exploration groups from the seed: the same seed gives the same groups, another seed others", () => {
    const all = candidates(3000);
    const pick = (seed: number) => {
      const { members } = selectUpliftMembers(all, none, { ...options, seed });
      return {
        control: members.filter((m) => m.arm === "control").map((m) => m.customerId),
        exploration: members.filter((m) => m.selectedBy === "exploration").map((m) => m.customerId),
      };
    };
    expect(pick(7)).toEqual(pick(7));
    const other = pick(8);
    expect(other.exploration).not.toEqual(pick(7).exploration);
    expect(other.control).not.toEqual(pick(7).control);
    // Exploration is uniform over the non-negative eligible: its mean predicted uplift is the population's.
    const seeds = Array.from({ length: 20 }, (_, s) => s + 100);
    const explorable = all.filter((c) => (c.uplift as number) >= 0);
    const mean = explorable.reduce((a, c) => a + (c.uplift as number), 0) / explorable.length;
    const means = seeds.map((s) => {
      const e = selectUpliftMembers(all, none, { ...options, seed: s }).members.filter((m) => m.selectedBy === "exploration");
      return e.reduce((a, m) => a + m.uplift, 0) / e.length;
    });
    expect(Math.abs(means.reduce((a, b) => a + b, 0) / means.length - mean)).toBeLessThan(0.01);
  });

  it("ranks by net value with customer values and leaves out customers the model could not score", () => {
    const all = candidates(1000).map((c, i) => ({ ...c, value: i % 3 === 0 ? 1000 : 10, uplift: i === 5 ? null : c.uplift }));
    const { members, counts } = selectUpliftMembers(all, none, { ...options, budget: 50, offerCost: 5, withValues: true, explorationShare: 0 });
    expect(counts.noUplift).toBe(1);
    // uplift × 10 − 5 ≤ 0 for every low-value customer with uplift ≤ 0.5: only high-value customers are worth an offer.
    expect(members.every((m) => m.value === 1000)).toBe(true);
    expect(members[0]?.expectedValue).toBeCloseTo((members[0]?.uplift as number) * 1000 - 5, 9);
  });
});

describe.each(storeTargets)("uplift campaigns on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  const base: Omit<PlanRequest, "name" | "run"> = {
    rule: { kind: "threshold", threshold: 0 },
    budget: 400,
    controlShare: 0.2,
    cooldownDays: 0,
    modelBands: async () => BANDS,
  };

  it("records the uplift plan: ranking, each member's uplift and model version, sleeping dogs held back; the report adds deciles", async () => {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n: 2000, asOf: "2026-11-01" });
    const uplift = new Map(run.customers.map((c, i) => [c.id, (i % 10) / 30 - 0.1]));
    const result = await planCampaign(store, {
      ...base,
      name: "u1",
      run: "latest",
      uplift: {
        modelName: "churn-uplift",
        model: "champion",
        explorationShare: 0.1,
        scores: async () => ({ modelName: "churn-uplift", modelVersion: "3", uplift }),
      },
    });
    expect(result.campaign.ranking).toBe("uplift");
    expect(result.counts.treated).toBe(400);
    expect(result.notes[0]).toContain("uplift model churn-uplift v3: 600 sleeping dogs");
    const rows = await campaignUpliftMembers(store, "u1");
    const members = await campaignMembers(store, "u1");
    expect(rows).toHaveLength(members.length);
    expect(new Set(rows.map((r) => r.uplift_model_version))).toEqual(new Set(["3"]));
    const treated = new Set(members.filter((m) => m.arm === "treatment").map((m) => m.customer_id));
    expect(rows.filter((r) => treated.has(r.customer_id) && r.uplift < 0)).toEqual([]);
    expect(rows.filter((r) => r.selected_by === "exploration").length).toBe(Math.floor(40 / 0.8));
    // Outcomes after the campaign: the report gives realised uplift per predicted decile.
    await upsertOutcomes(
      store,
      members.map((m, i) => ({
        customer_id: m.customer_id,
        observed_at: "2026-11-20",
        churned: i % 4 === 0 ? 1 : 0,
        source: "t",
        ingested_at: "2026-11-20T00:00:00Z",
      })),
    );
    const report = await campaignReport(store, "u1", 0.02);
    expect(report.uplift?.model).toEqual({ name: "churn-uplift", version: "3" });
    expect(report.uplift?.observed).toBe(members.length);
    expect(report.uplift?.deciles).toHaveLength(10);
    expect(report.uplift?.deciles.reduce((a, d) => a + d.members, 0)).toBe(members.length);
    expect(report.uplift?.qiniCurve[0]).toEqual([0, 0]);
  });

  it("exports the randomised members with the features their run scored, and refuses too little data", async () => {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n: 3000, asOf: "2026-10-01" });
    const dir = mkdtempSync(join(tmpdir(), "churnops-uplift-test-"));
    const snapshot = join(dir, "2026-10-01.csv");
    writeFileSync(snapshot, ["customer_id,tenure,plan,churned", ...run.customers.map((c, i) => `${c.id},${i % 70},${i % 3 === 0 ? "a" : "b"},1`)].join("\n"));
    await keepSnapshotRecord(store, {
      date: "2026-10-01",
      run_id: run.runId,
      source: snapshot,
      path: snapshot,
      rows: 3000,
      columns: "[]",
      kept_at: "2026-10-01T07:00:00Z",
    });
    await planCampaign(store, { ...base, budget: null, controlShare: 0.3, name: "r1", run: "latest" });
    const members = await campaignMembers(store, "r1");
    // Outcomes inside the 30-day horizon for all but the last 100 members; one outside it.
    await upsertOutcomes(
      store,
      members.slice(0, -100).map((m, i) => ({
        customer_id: m.customer_id,
        observed_at: i === 0 ? "2026-12-15" : "2026-10-20",
        churned: i % 5 === 0 ? 1 : 0,
        source: "t",
        ingested_at: "2026-12-20T00:00:00Z",
      })),
    );
    const schema = async () => ({ idColumn: "customer_id", features: ["tenure", "plan"] });
    const out = join(dir, "uplift.parquet");
    const summary = await exportUpliftData(store, { campaigns: ["r1"], horizonDays: 30, out, modelSchema: schema });
    expect(summary.campaigns[0]?.no_outcome).toBe(101);
    expect(summary.rows).toBe(3000 - 101);
    expect(summary.treatment.rows + summary.control.rows).toBe(summary.rows);
    expect(summary.control.rows).toBeGreaterThan(800);
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const cols = (await db.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${out}')`)).getRowObjects().map((r) => String(r.column_name));
    // Features only from the model's schema: the snapshot's own label column never reaches training.
    expect(cols.sort()).toEqual(["__arm", "__campaign", "__churned", "__customer_id", "__delivery", "__risk", "plan", "tenure"]);
    db.closeSync();
    const refused = await exportUpliftData(store, { campaigns: ["r1"], horizonDays: 30, out, modelSchema: schema, minRowsPerArm: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(isChurnopsError(refused) && refused.code).toBe("bad_input");
    expect((refused as Error).message).toMatch(/^too little data to learn an uplift model from r1: the treatment arm has \d+ members with a known outcome/);
    expect((refused as Error).message).toContain("r1: 101 without an outcome yet");
  });
});
