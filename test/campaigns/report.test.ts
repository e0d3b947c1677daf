import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { planCampaign } from "../../src/campaigns/plan.js";
import { seededRandom } from "../../src/campaigns/random.js";
import type { EffectReport } from "../../src/campaigns/report.js";
import type { SnakeKeys } from "../../src/cli/context.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { runCli } from "../helpers/cli.js";
import { storeTargets } from "../helpers/stores.js";
import { BANDS, seedRun } from "./seed.js";

describe.each(storeTargets)("campaign effect report on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  async function campaignWithOutcomes(n: number, rates: { treatment: number; control: number }, seed: number) {
    const url = await target.fresh();
    store = await openStore(url);
    await seedRun(store, { n, asOf: "2026-09-01" });
    await planCampaign(store, {
      name: "effect",
      run: "latest",
      rule: { kind: "threshold", threshold: 0 },
      budget: null,
      controlShare: 0.3,
      cooldownDays: 30,
      modelBands: async () => BANDS,
    });
    const members = await campaignMembers(store, "effect");
    const random = seededRandom(seed);
    const lines = ["customer_id,churned,observed_at"];
    for (const m of members) {
      const churned = random() < rates[m.arm];
      lines.push(`${m.customer_id},${churned ? "yes" : "no"},2026-10-${String(1 + Math.floor(random() * 28)).padStart(2, "0")}`);
    }
    // Churn seen before the campaign's score date is no outcome of it.
    lines.push(`${members[0]?.customer_id},yes,2026-08-15`);
    lines.push("ghost,perhaps,2026-10-01");
    const home = mkdtempSync(join(tmpdir(), "churnops-outcomes-"));
    const file = join(home, "outcomes.csv");
    writeFileSync(file, `${lines.join("\n")}\n`);
    return { url, home, file, members };
  }

  it("recovers a known effect from synthetic outcomes ingested through the CLI, its CI covering the truth", async () => {
    const { url, home, file, members } = await campaignWithOutcomes(12_000, { treatment: 0.2, control: 0.3 }, 99);
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home };
    const ingest = await runCli(["outcomes", "ingest", file, "--json"], env);
    expect(ingest.code, ingest.stderr).toBe(0);
    expect(JSON.parse(ingest.stdout)).toMatchObject({ rows: members.length + 2, recorded: members.length + 1, skipped: 1 });
    const again = await runCli(["outcomes", "ingest", file, "--json"], env);
    expect(again.code, again.stderr).toBe(0);
    const out = await runCli(["campaign", "report", "effect", "--json"], env);
    expect(out.code, out.stderr).toBe(0);
    const report = JSON.parse(out.stdout) as SnakeKeys<EffectReport>;
    expect(report.treatment.observed + report.control.observed).toBe(members.length);
    expect(report.control.observed).toBe(3600);
    expect(report.test).toBe("two-proportion z-test");
    const [lo, hi] = report.absolute_reduction_ci95 as [number, number];
    expect(lo).toBeLessThanOrEqual(0.1);
    expect(hi).toBeGreaterThanOrEqual(0.1);
    expect(hi - lo).toBeLessThan(0.04);
    expect(report.relative_reduction as number).toBeGreaterThan(0.25);
    expect(report.relative_reduction as number).toBeLessThan(0.42);
    expect(report.verdict).toBe("works");
    expect(report.p_value as number).toBeLessThan(1e-6);
    expect(report.customers_retained?.estimate as number).toBeCloseTo((report.absolute_reduction as number) * report.treatment.observed, 9);
    const human = await runCli(["campaign", "report", "effect"], env);
    expect(human.stdout).toMatch(/Verdict: the campaign works: churn 2\d\.\d% treated vs 3\d\.\d% control/);
  });

  it("says there is no evidence yet for a campaign too small to tell, with the sample it would need", async () => {
    const { url, home, file } = await campaignWithOutcomes(50, { treatment: 0.2, control: 0.3 }, 5);
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home };
    expect((await runCli(["outcomes", "ingest", file], env)).code).toBe(0);
    const out = await runCli(["campaign", "report", "effect", "--json"], env);
    const report = JSON.parse(out.stdout) as SnakeKeys<EffectReport>;
    expect(report.verdict).toBe("no_evidence_yet");
    expect(report.message).toMatch(
      /^no evidence yet: 35 treated and 15 control customers have outcomes; detecting a [\d.]+% reduction needs about \d+ treated and \d+ control/,
    );
    expect(report.sample_needed?.control as number).toBeGreaterThan(15);
  });
});
