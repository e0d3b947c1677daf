import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { seededRandom } from "../../src/campaigns/random.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore } from "../../src/store/db.js";
import { campaignUpliftMembers } from "../../src/store/uplift.js";
import { runCli } from "../helpers/cli.js";

const fixture = inject("fixture");
let home: string;
let env: NodeJS.ProcessEnv;
let dbUrl: string;

beforeAll(async () => {
  home = join(mkdtempSync(join(tmpdir(), "churnops-cli-uplift-")), "home");
  cpSync(fixture.home, home, { recursive: true });
  dbUrl = `sqlite://${join(home, "uplift.db")}`;
  env = { CHURNOPS_HOME: home, CHURNOPS_DB_URL: dbUrl, MLFLOW_TRACKING_URI: "" };
  const scored = await runCli(["score", "--data", fixture.dataPath, "--as-of", "2026-11-10", "--json"], env);
  expect(scored.code, scored.stderr).toBe(0);
});

describe("uplift commands, end to end on the real trainer and registry", () => {
  it("refuses to learn from a campaign without outcomes, then learns from its control group and targets by uplift", async () => {
    const plan = await runCli(["campaign", "plan", "--name", "u-risk", "--top-pct", "100", "--control-share", "0.5", "--seed", "3", "--json"], env);
    expect(plan.code, plan.stderr).toBe(0);
    const early = await runCli(["uplift", "train", "--campaign", "u-risk", "--json"], env);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/^churnops: too little data to learn an uplift model from u-risk: the treatment arm has 0 members with a known outcome/);
    expect(early.stderr).toContain("u-risk: 4000 without an outcome yet");

    // Outcomes 20 days later: the offer lowers churn from 30% to 18%.
    const store = await openStore(dbUrl);
    const members = await campaignMembers(store, "u-risk");
    await store.close();
    const random = seededRandom(5);
    const lines = members.map((m) => `${m.customer_id},${random() < (m.arm === "treatment" ? 0.18 : 0.3) ? "yes" : "no"},2026-11-30`);
    const outcomes = join(home, "outcomes.csv");
    writeFileSync(outcomes, ["customer_id,churned,observed_at", ...lines].join("\n"));
    const ingested = await runCli(["outcomes", "ingest", outcomes, "--json"], env);
    expect(ingested.code, ingested.stderr).toBe(0);

    const trained = await runCli(["uplift", "train", "--campaign", "u-risk", "--json"], env);
    expect(trained.code, trained.stderr).toBe(0);
    const t = JSON.parse(trained.stdout);
    expect(t.model_name).toBe("churn-uplift");
    expect(t.version).toBe("1");
    expect(t.gate.promoted).toBe(true);
    expect(t.data.treatment.rows + t.data.control.rows).toBe(4000);
    expect(Object.keys(t.rankings).sort()).toEqual(["random", "risk", "uplift"]);
    // A constant effect of 12 points: the held-out members see it, and so does the model on average.
    expect(t.held_out.observed_uplift).toBeGreaterThan(0.05);
    expect(t.held_out.mean_predicted_uplift).toBeGreaterThan(0.03);

    const up = await runCli(
      ["campaign", "plan", "--name", "u-next", "--rank-by", "uplift", "--budget", "300", "--top-pct", "100", "--cooldown-days", "0", "--json"],
      env,
    );
    expect(up.code, up.stderr).toBe(0);
    const p = JSON.parse(up.stdout);
    expect(p.campaign.ranking).toBe("uplift");
    expect(p.counts.treated).toBe(300);
    expect(p.counts.exploration.treated).toBe(30);
    expect(typeof p.counts.sleeping_dogs).toBe("number");
    expect(p.notes[0]).toMatch(/^uplift model churn-uplift v1: \d+ sleeping dogs \(negative predicted uplift\) held back, never treated$/);
    const again = await openStore(dbUrl);
    const rows = await campaignUpliftMembers(again, "u-next");
    const arms = new Map((await campaignMembers(again, "u-next")).map((m) => [m.customer_id, m.arm]));
    await again.close();
    expect(rows).toHaveLength(arms.size);
    expect(new Set(rows.map((r) => `${r.uplift_model_name} v${r.uplift_model_version}`))).toEqual(new Set(["churn-uplift v1"]));
    expect(rows.filter((r) => r.uplift < 0 && arms.get(r.customer_id) === "treatment")).toEqual([]);

    const human = await runCli(
      ["campaign", "plan", "--name", "u-next", "--rank-by", "uplift", "--budget", "300", "--top-pct", "100", "--cooldown-days", "0"],
      env,
    );
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("ranked by uplift");
  }, 400_000);

  it("says what --rank-by needs", async () => {
    const a = await runCli(["campaign", "plan", "--name", "x1", "--rank-by", "expected-value"], env);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("--rank-by expected-value needs --value-column");
    const b = await runCli(["campaign", "plan", "--name", "x2", "--rank-by", "uplift", "--value-column", "customer_value", "--offer-success", "0.3"], env);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("--offer-success is for --rank-by expected-value");
    const c = await runCli(["campaign", "plan", "--name", "x3", "--rank-by", "upflit"], env);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("--rank-by");
  });
});
