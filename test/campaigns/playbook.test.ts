import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exportMessages } from "../../src/campaigns/export.js";
import { type PlanRequest, planCampaign } from "../../src/campaigns/plan.js";
import { chooseOffer, type ModelReasons, type PlanPlaybook, type Playbook } from "../../src/campaigns/playbook.js";
import { seededRandom } from "../../src/campaigns/random.js";
import { analyzeEffect, campaignReport } from "../../src/campaigns/report.js";
import { loadConfig } from "../../src/config.js";
import { ChurnopsError } from "../../src/errors.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import type { StoredReason } from "../../src/store/read/customer-reasons.js";
import { scoresOfRun } from "../../src/store/runs.js";
import { runCli } from "../helpers/cli.js";
import { storeTargets } from "../helpers/stores.js";
import { BANDS, seedRun } from "./seed.js";

const MODEL: ModelReasons = {
  model: "churn v1",
  features: [
    { name: "Contract", kind: "categorical" },
    { name: "tenure", kind: "numeric", label: "Tenure (months)" },
    { name: "MonthlyCharges", kind: "numeric" },
  ],
  categories: new Map([["Contract", ["Month-to-month", "One year", "Two year"]]]),
};

const PLAYBOOK: Playbook = {
  rules: [
    { feature: "Contract", values: ["Month-to-month"], offer: "ANNUAL20", message: "{label} is {value}: a year's contract saves 20% ({offer})" },
    { feature: "tenure", max: 6, offer: "WELCOME", message: "Hello {customer_id}: {reason}" },
  ],
  default_offer: "GENERIC",
};

const reason = (feature: string, value: string | number, contribution: number, label = feature): StoredReason => ({
  feature,
  label,
  value,
  contribution,
  text: `${label}: ${value} — raises risk`,
});

function playbookOf(rules: Playbook, model: ModelReasons = MODEL): PlanPlaybook {
  return { name: "retention", rules, modelReasons: async () => model };
}

describe("choosing an offer from a member's reasons", () => {
  const member = { customerId: "c1", probability: 0.71234, band: "high" };

  it("takes the first rule matching the highest-ranked reason, and fills in its message", () => {
    // Reason 1 (tenure 3) matches rule 2; reason 2 (Month-to-month) matches rule 1: the higher reason wins.
    const choice = chooseOffer(PLAYBOOK, member, [reason("tenure", 3, 0.9, "Tenure (months)"), reason("Contract", "Month-to-month", 0.5)], null);
    expect(choice).toMatchObject({ offer: "WELCOME", rule: 2, reason: { feature: "tenure", rank: 1, value: 3 } });
    expect(choice.message).toBe("Hello c1: Tenure (months): 3 — raises risk");
    const contract = chooseOffer(PLAYBOOK, member, [reason("Contract", "Month-to-month", 0.5), reason("tenure", 3, 0.4)], null);
    expect(contract).toMatchObject({ offer: "ANNUAL20", rule: 1, message: "Contract is Month-to-month: a year's contract saves 20% (ANNUAL20)" });
  });

  it("matches a range with both ends included, and falls back to the default offer when nothing matches", () => {
    expect(chooseOffer(PLAYBOOK, member, [reason("tenure", 6, 0.2)], null).offer).toBe("WELCOME");
    expect(chooseOffer(PLAYBOOK, member, [reason("tenure", 6.5, 0.2)], null)).toEqual({ offer: "GENERIC", rule: null, reason: null, message: null });
    expect(chooseOffer(PLAYBOOK, member, [reason("Contract", "Two year", 0.2)], null).offer).toBe("GENERIC");
    const { default_offer: _, ...noDefault } = PLAYBOOK;
    expect(chooseOffer(noDefault, member, [], "FLAG").offer).toBe("FLAG");
    expect(chooseOffer(noDefault, member, null, null).offer).toBeNull();
  });
});

describe("playbook config", () => {
  const configWith = (toml: string) => {
    const dir = mkdtempSync(join(tmpdir(), "churnops-playbook-"));
    writeFileSync(join(dir, "churnops.toml"), toml);
    return () => loadConfig({ cwd: dir, env: {} });
  };

  it("loads rules by name", () => {
    const config = configWith(`
[campaigns.playbooks.retention]
default_offer = "GENERIC"
[[campaigns.playbooks.retention.rules]]
feature = "Contract"
values = ["Month-to-month"]
offer = "ANNUAL20"
message = "Switch to a yearly contract, {customer_id}"
[[campaigns.playbooks.retention.rules]]
feature = "tenure"
min = 0
max = 6
offer = "WELCOME"
message = "{reason}"
`)();
    expect(config.campaigns.playbooks.retention?.rules).toHaveLength(2);
    expect(config.campaigns.playbooks.retention?.rules[1]).toMatchObject({ feature: "tenure", min: 0, max: 6 });
  });

  it.each([
    ['feature = "tenure"\noffer = "X"\nmessage = "Hi {name}"', /rules\.0\.message: unknown placeholder \{name\}; a template may use \{customer_id\}/],
    ['feature = "tenure"\noffer = "X"\nmessage = "Hi {customer_id"', /unmatched \{ or \}/],
    ['feature = "tenure"\nmin = 9\nmax = 3\noffer = "X"\nmessage = "m"', /rules\.0\.min: min 9 is above max 3/],
    ['feature = "tenure"\nvalues = [1]\nmax = 3\noffer = "X"\nmessage = "m"', /give values or a range \(min\/max\), not both/],
    ['feature = "tenure"\nofer = "X"\nmessage = "m"', /campaigns\.playbooks\.retention\.rules\.0/],
  ])("refuses a rule that is wrong, naming where: %s", (rule, message) => {
    const load = configWith(`[[campaigns.playbooks.retention.rules]]\n${rule}\n`);
    expect(load).toThrow(ChurnopsError);
    expect(load).toThrow(message);
  });
});

describe.each(storeTargets)("campaigns with an offer playbook on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** A run of `n` customers whose stored top reasons cycle through four kinds; returns who has which. */
  async function runWithReasons(n: number): Promise<{ runId: string; reasonsOf: Map<string, StoredReason[]> }> {
    store = await openStore(await target.fresh());
    const run = await seedRun(store, { n, asOf: "2026-09-01" });
    const kinds: StoredReason[][] = [
      [reason("Contract", "Month-to-month", 0.8), reason("tenure", 2, 0.3, "Tenure (months)")],
      [reason("tenure", 4, 0.6, "Tenure (months)"), reason("Contract", "Month-to-month", 0.2)],
      [reason("MonthlyCharges", 99.5, 0.4)],
      [],
    ];
    const reasonsOf = new Map<string, StoredReason[]>();
    for (const [i, c] of run.customers.entries()) {
      const list = kinds[i % kinds.length] as StoredReason[];
      reasonsOf.set(c.id, list);
      // The scores view takes inserts and deletes, not updates: the stored row is in score_rows (docs/store.md).
      await store.db
        .updateTable("score_rows")
        .set({ reasons: JSON.stringify(list) })
        .where(scoresOfRun(run.runId))
        .where("customer_id", "=", c.id)
        .execute();
    }
    return { runId: run.runId, reasonsOf };
  }

  const request = (playbook: PlanPlaybook | undefined): PlanRequest => ({
    name: "by-reason",
    run: "latest",
    rule: { kind: "threshold", threshold: 0 },
    budget: null,
    controlShare: 0.3,
    cooldownDays: 0,
    seed: 5,
    offer: "FLAG",
    modelBands: async () => BANDS,
    playbook,
  });

  it("gives every member, treated and control, the offer of their top matching reason, and exports it with the reasons", async () => {
    const { reasonsOf } = await runWithReasons(400);
    await planCampaign(store as Store, request(playbookOf(PLAYBOOK)));
    const members = await campaignMembers(store as Store, "by-reason");
    expect(members).toHaveLength(400);
    const expected = (id: string) => {
      const top = (reasonsOf.get(id) as StoredReason[])[0];
      if (top?.feature === "Contract") return { offer: "ANNUAL20", offer_reason: "Contract" };
      if (top?.feature === "tenure") return { offer: "WELCOME", offer_reason: "tenure" };
      return { offer: "GENERIC", offer_reason: null };
    };
    for (const m of members) expect({ offer: m.offer, offer_reason: m.offer_reason }, m.customer_id).toEqual(expected(m.customer_id));
    // Control members carry their offer too (the report compares the arms within each offer).
    expect(new Set(members.filter((m) => m.arm === "control").map((m) => m.offer))).toEqual(new Set(["ANNUAL20", "WELCOME", "GENERIC"]));

    const dir = mkdtempSync(join(tmpdir(), "churnops-export-"));
    await exportMessages(store as Store, "by-reason", join(dir, "out.jsonl"), "me", new Date(Date.now() + 60_000));
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const treated = members.filter((m) => m.arm === "treatment");
    expect(lines).toHaveLength(treated.length);
    for (const line of lines) {
      const own = reasonsOf.get(line.customer_id) as StoredReason[];
      expect(line.reasons).toEqual(own);
      expect(line.offer).toBe(expected(line.customer_id).offer);
      if (line.offer === "ANNUAL20") {
        expect(line.offer_reason).toEqual({ ...own[0], rank: 1, rule: 1 });
        expect(line.message).toBe("Contract is Month-to-month: a year's contract saves 20% (ANNUAL20)");
      } else if (line.offer === "WELCOME") {
        expect(line.offer_reason).toMatchObject({ feature: "tenure", value: 4, rank: 1, rule: 2 });
        expect(line.message).toBe(`Hello ${line.customer_id}: Tenure (months): 4 — raises risk`);
      } else expect([line.offer_reason, line.message]).toEqual([null, null]);
    }

    // The same plan under another name, exported to CSV (its messages are still pending).
    await planCampaign(store as Store, { ...request(playbookOf(PLAYBOOK)), name: "by-reason-csv" });
    await exportMessages(store as Store, "by-reason-csv", join(dir, "out.csv"), "me", new Date(Date.now() + 60_000));
    const csv = readFileSync(join(dir, "out.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe(
      "idempotency_key,campaign,customer_id,offer,probability,band,rank,model_name,model_version,run_id,planned_at,offer_reason,offer_reason_text,message,reason_1,reason_1_text,reason_2,reason_2_text",
    );
    expect(csv).toHaveLength(treated.length + 1);
    const welcome = csv.find((l) => l.split(",")[3] === "WELCOME") as string;
    const id = welcome.split(",")[2];
    const tail = `,tenure,Tenure (months): 4 — raises risk,Hello ${id}: Tenure (months): 4 — raises risk,tenure,Tenure (months): 4 — raises risk,Contract,Contract: Month-to-month — raises risk`;
    expect(welcome.endsWith(tail)).toBe(true);
    // A member without reasons has empty reason cells.
    const generic = csv.filter((l) => l.split(",")[3] === "GENERIC").map((l) => l.split(",").slice(-7));
    expect(generic).toContainEqual(["", "", "", "", "", "", ""]);
  });

  it("breaks the report down by offer: churn per arm and the reduction with its interval, within each offer", async () => {
    await runWithReasons(2000);
    await planCampaign(store as Store, request(playbookOf(PLAYBOOK)));
    const members = await campaignMembers(store as Store, "by-reason");
    // ANNUAL20 works (treated churn 10% vs 40%); the others do nothing (30% in both arms).
    const random = seededRandom(3);
    const churnRate = (offer: string | null, arm: string) => (offer === "ANNUAL20" ? (arm === "treatment" ? 0.1 : 0.4) : 0.3);
    await upsertOutcomes(
      store as Store,
      members.map((m) => ({
        customer_id: m.customer_id,
        churned: random() < churnRate(m.offer, m.arm) ? 1 : 0,
        observed_at: "2026-10-15",
        source: "test",
        ingested_at: "2026-10-16T00:00:00.000Z",
      })),
    );
    const report = await campaignReport(store as Store, "by-reason", 0.02);
    expect(report.byOffer?.map((o) => o.offer).sort()).toEqual(["ANNUAL20", "GENERIC", "WELCOME"]);
    const outcomes = await (store as Store).db.selectFrom("outcomes").select(["customer_id", "churned"]).execute();
    const churned = new Map(outcomes.map((o) => [o.customer_id, Number(o.churned)]));
    for (const o of report.byOffer ?? []) {
      const arm = (name: "treatment" | "control") => {
        const inArm = members.filter((m) => m.offer === o.offer && m.arm === name);
        const c = inArm.filter((m) => churned.get(m.customer_id) === 1).length;
        return { arm: name, members: inArm.length, observed: inArm.length, churned: c, observedValue: null };
      };
      const direct = analyzeEffect({ treatment: arm("treatment"), control: arm("control"), minEffect: 0.02, offerCost: null });
      expect(o.treatment).toEqual(direct.treatment);
      expect(o.control).toEqual(direct.control);
      expect(o.absoluteReduction).toBeCloseTo(direct.absoluteReduction as number, 12);
      expect(o.absoluteReductionCi95).toEqual(direct.absoluteReductionCi95);
      expect(o.pValue).toBe(direct.pValue);
    }
    const annual = report.byOffer?.find((o) => o.offer === "ANNUAL20");
    expect(annual?.verdict).toBe("works");
    expect(annual?.absoluteReductionCi95?.[0]).toBeGreaterThan(0.15);
    // A campaign planned without a playbook has no break-down (and its params are as before: no playbook key).
    await planCampaign(store as Store, { ...request(undefined), name: "plain" });
    expect((await campaignReport(store as Store, "plain", 0.02)).byOffer).toBeUndefined();
  });

  it("names the playbooks the config defines when --playbook names another (exit 2), and a bad rule when the config loads", async () => {
    const url = await target.fresh();
    store = await openStore(url);
    await seedRun(store, { n: 10, asOf: "2026-09-01" });
    const home = mkdtempSync(join(tmpdir(), "churnops-playbook-cli-"));
    const config = join(home, "churnops.toml");
    writeFileSync(config, '[[campaigns.playbooks.retention.rules]]\nfeature = "tenure"\noffer = "X"\nmessage = "{reason}"\n');
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home, CHURNOPS_CONFIG: config };
    const unknown = await runCli(["campaign", "plan", "--name", "p", "--threshold", "0", "--playbook", "winback"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--playbook winback: no [campaigns.playbooks.winback] in the config (it defines retention)");
    writeFileSync(config, '[[campaigns.playbooks.retention.rules]]\nfeature = "tenure"\noffer = "X"\nmessage = "{why}"\n');
    const bad = await runCli(["campaign", "plan", "--name", "p", "--threshold", "0", "--playbook", "retention"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("campaigns.playbooks.retention.rules.0.message: unknown placeholder {why}");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(await campaignMembers(store, "p")).toHaveLength(0);
  });

  it("refuses a playbook the run's model cannot match, and a run scored without reasons, before recording anything", async () => {
    await runWithReasons(20);
    const wrong: [Playbook, RegExp][] = [
      [
        { rules: [{ feature: "Contrct", offer: "X", message: "m" }] },
        /campaigns\.playbooks\.retention\.rules\[0\]\.feature: "Contrct" is not a reason feature of model churn v1 \(its features: Contract, tenure, MonthlyCharges\)/,
      ],
      [{ rules: [{ feature: "Contract", min: 1, offer: "X", message: "m" }] }, /Contract is categorical; give values/],
      [
        { rules: [{ feature: "Contract", values: ["Monthly"], offer: "X", message: "m" }] },
        /"Monthly" is not a category of Contract \(its categories: Month-to-month, One year, Two year\)/,
      ],
      [{ rules: [{ feature: "tenure", values: ["short"], offer: "X", message: "m" }] }, /tenure is numeric; "short" is not a number/],
    ];
    for (const [rules, message] of wrong) await expect(planCampaign(store as Store, request(playbookOf(rules)))).rejects.toThrow(message);
    await expect(planCampaign(store as Store, request(playbookOf(PLAYBOOK, { ...MODEL, features: null })))).rejects.toThrow(/has no contributions/);
    expect(await campaignMembers(store as Store, "by-reason")).toHaveLength(0);

    await (store as Store).db.updateTable("score_rows").set({ reasons: null }).execute();
    await expect(planCampaign(store as Store, request(playbookOf(PLAYBOOK)))).rejects.toThrow(/stored no reasons with its scores; score with --reasons N/);
    expect(await campaignMembers(store as Store, "by-reason")).toHaveLength(0);
  });
});
