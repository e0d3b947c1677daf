import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type PlanRequest, planCampaign } from "../../src/campaigns/plan.js";
import { controlQuota, selectionSize } from "../../src/campaigns/select.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { addOptOuts, upsertOutcomes } from "../../src/store/outcomes.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { BANDS, seedRun } from "./seed.js";

const base: Omit<PlanRequest, "name" | "run"> = {
  rule: { kind: "threshold", threshold: 0 },
  budget: null,
  controlShare: 0.1,
  cooldownDays: 30,
  modelBands: async () => BANDS,
};

describe("selection arithmetic", () => {
  it("spreads the control quota over bands by largest remainder, summing to the rounded total", () => {
    const q = controlQuota(
      new Map([
        ["high", 15],
        ["medium", 27],
        ["low", 58],
      ]),
      0.1,
    );
    expect([...q.values()].reduce((a, b) => a + b, 0)).toBe(10);
    expect(q.get("low")).toBe(6);
    expect(q.get("medium")).toBe(3);
    expect(q.get("high")).toBe(1);
  });

  it("selects the most customers whose treated part fits the budget", () => {
    expect(selectionSize(1000, 100, 0.1)).toBe(111);
    expect(111 - Math.round(111 * 0.1)).toBe(100);
    expect(selectionSize(50, 100, 0.1)).toBe(50);
    expect(selectionSize(1000, null, 0.2)).toBe(1000);
  });
});

describe.each(storeTargets)("campaign planning on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it("holds out a seeded control group of the requested share within every risk band", async () => {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n: 6000, asOf: "2026-11-01" });
    const result = await planCampaign(store, { ...base, name: "strat", run: "latest", controlShare: 0.2, seed: 42 });
    expect(result.status).toBe("planned");
    expect(result.counts.selected).toBe(6000);
    expect(result.counts.control).toBe(1200);
    const members = await campaignMembers(store, "strat");
    expect(members).toHaveLength(6000);
    for (const band of ["high", "medium", "low"]) {
      const inBand = members.filter((m) => m.band === band);
      const control = inBand.filter((m) => m.arm === "control");
      expect(inBand.length).toBeGreaterThan(500);
      // Stratified: each band's control count is its share rounded, never off by more than one customer.
      expect(Math.abs(control.length - inBand.length * 0.2)).toBeLessThanOrEqual(1);
      // Random within the band: the control group's mean risk matches the band's.
      const mean = (xs: { probability: number }[]) => xs.reduce((a, m) => a + m.probability, 0) / xs.length;
      expect(Math.abs(mean(control) - mean(inBand))).toBeLessThan(0.03);
    }
    const again = await planCampaign(store, { ...base, name: "strat-copy", run: run.runId, controlShare: 0.2, seed: 42, cooldownDays: 0 });
    const copy = await campaignMembers(store, "strat-copy", "control");
    expect(copy.map((m) => m.customer_id).sort()).toEqual(
      members
        .filter((m) => m.arm === "control")
        .map((m) => m.customer_id)
        .sort(),
    );
    expect(again.campaign.seed).toBe(42);
    await planCampaign(store, { ...base, name: "strat-other", run: run.runId, controlShare: 0.2, seed: 43, cooldownDays: 0 });
    const other = new Set((await campaignMembers(store, "strat-other", "control")).map((m) => m.customer_id));
    const overlap = copy.filter((m) => other.has(m.customer_id)).length;
    expect(overlap).toBeLessThan(copy.length * 0.4);
  });

  it("changes nothing when the same campaign is planned again, and refuses other settings under the same name", async () => {
    store = await openStore(await target.fresh());
    await seedRun(store, { n: 500, asOf: "2026-11-01" });
    const first = await planCampaign(store, { ...base, name: "twice", run: "latest", rule: { kind: "band", band: "high" }, budget: 40 });
    const second = await planCampaign(store, { ...base, name: "twice", run: "latest", rule: { kind: "band", band: "high" }, budget: 40 });
    expect(second.status).toBe("already_planned");
    expect(second.counts).toEqual(first.counts);
    expect(second.campaign.planned_at).toBe(first.campaign.planned_at);
    const count = (table: "campaign_members" | "campaign_messages") => countRows(store as Store, table);
    expect(await count("campaign_members")).toBe(first.counts.selected);
    expect(await count("campaign_messages")).toBe(first.counts.treated);
    expect(first.counts.treated).toBe(40);
    await expect(planCampaign(store, { ...base, name: "twice", run: "latest", rule: { kind: "band", band: "high" }, budget: 50 })).rejects.toThrow(
      /already planned with different settings \(budget: 40\)/,
    );
  });

  it("takes the riskiest eligible customers up to the budget, only from the band asked for", async () => {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n: 2000, asOf: "2026-11-01" });
    const result = await planCampaign(store, { ...base, name: "budget", run: run.runId, rule: { kind: "band", band: "medium" }, budget: 300 });
    expect(result.counts.treated).toBe(300);
    const members = await campaignMembers(store, "budget");
    const chosen = new Set(members.map((m) => m.customer_id));
    const ranked = [...run.customers].sort((a, b) => b.probability - a.probability);
    expect(ranked.slice(0, members.length).every((c) => chosen.has(c.id))).toBe(true);
    expect(members.every((m) => m.band === "high" || m.band === "medium")).toBe(true);
  });

  it("skips customers treated within the cooldown, opted out, or already churned, but not earlier control members", async () => {
    store = await openStore(await target.fresh());
    await seedRun(store, { n: 800, asOf: "2026-10-20" });
    const first = await planCampaign(store, {
      ...base,
      name: "october",
      run: "daily-2026-10-20-churn-v1",
      rule: { kind: "band", band: "high" },
      controlShare: 0.3,
    });
    const octMembers = await campaignMembers(store, "october");
    const treatedBefore = new Set(octMembers.filter((m) => m.arm === "treatment").map((m) => m.customer_id));
    const controlBefore = octMembers.filter((m) => m.arm === "control").map((m) => m.customer_id);
    expect(first.counts.treated).toBeGreaterThan(50);

    const run = await seedRun(store, { n: 800, asOf: "2026-11-01", seed: 1 });
    const octIds = new Set(octMembers.map((m) => m.customer_id));
    const riskyNow = run.customers.filter((c) => c.band !== "low").map((c) => c.id);
    const fresh = riskyNow.filter((id) => !octIds.has(id));
    const optedOut = fresh.slice(0, 7);
    const churned = fresh.slice(7, 12);
    const churnsLater = fresh[12] as string;
    await addOptOuts(
      store,
      optedOut.map((id) => ({ customer_id: id, source: "test", opted_out_at: "2026-10-01T00:00:00Z" })),
    );
    await upsertOutcomes(store, [
      ...churned.map((id) => ({ customer_id: id, observed_at: "2026-10-30", churned: 1, source: "test", ingested_at: "x" })),
      // Churn observed after the score date is an outcome of the campaign, not a reason to skip someone.
      { customer_id: churnsLater, observed_at: "2026-11-15", churned: 1, source: "test", ingested_at: "x" },
    ]);
    const november = await planCampaign(store, { ...base, name: "november", run: run.runId, rule: { kind: "band", band: "medium" }, cooldownDays: 30 });
    const novIds = new Set((await campaignMembers(store, "november")).map((m) => m.customer_id));
    expect([...treatedBefore].some((id) => novIds.has(id))).toBe(false);
    expect(optedOut.some((id) => novIds.has(id)) || churned.some((id) => novIds.has(id))).toBe(false);
    expect(november.counts.excluded).toMatchObject({ cooldown: treatedBefore.size, opted_out: 7, churned: 5 });
    expect(controlBefore.length).toBeGreaterThan(20);
    expect(controlBefore.every((id) => novIds.has(id))).toBe(true);
    expect(novIds.has(churnsLater)).toBe(true);
    expect(novIds.size).toBe(riskyNow.length - treatedBefore.size - 12);

    // Twelve days later, a 10-day cooldown no longer holds October's treated customers back.
    const short = await planCampaign(store, { ...base, name: "november-short", run: run.runId, rule: { kind: "band", band: "medium" }, cooldownDays: 10 });
    expect(short.counts.excluded.cooldown).toBe(november.counts.treated);
  });

  it("ranks by expected value from a value file and drops offers worth nothing", async () => {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n: 300, asOf: "2026-11-01" });
    const dir = mkdtempSync(join(tmpdir(), "churnops-values-"));
    const file = join(dir, "values.csv");
    const values = new Map(run.customers.map((c, i) => [c.id, i % 10 === 0 ? 0 : 100 + (i % 7) * 50]));
    writeFileSync(file, `customer_id,customer_value\n${[...values].map(([id, v]) => `${id},${v}`).join("\n")}\nnobody,oops\n`);
    const result = await planCampaign(store, {
      ...base,
      name: "ev",
      run: run.runId,
      rule: { kind: "top_pct", pct: 50 },
      budget: 60,
      values: { source: { data: file }, idColumn: "customer_id", valueColumn: "customer_value", offerCost: 5, offerSuccess: 0.25 },
    });
    expect(result.campaign.ranking).toBe("expected_value");
    expect(result.counts.matchingRule).toBe(150);
    expect(result.counts.excluded.not_worth_an_offer).toBeGreaterThan(0);
    const members = await campaignMembers(store, "ev");
    for (const m of members) {
      expect(m.expected_value).toBeCloseTo(m.probability * (values.get(m.customer_id) as number) * 0.25 - 5, 9);
      expect(m.expected_value as number).toBeGreaterThan(0);
    }
    const evs = members.map((m) => m.expected_value as number);
    expect(evs).toEqual([...evs].sort((a, b) => b - a));
  });
});
