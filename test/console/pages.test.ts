import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { previewCampaign } from "../../src/campaigns/plan.js";
import type { Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { registeredBands } from "../../src/model/registry.js";
import { estimateRun } from "../../src/monitoring/check-estimate.js";
import { listAudit } from "../../src/store/audit.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { saveDriftReport } from "../../src/store/monitoring.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { type SeededRun, seedRun } from "../campaigns/seed.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { addUsers, Client, type ConsoleServer, realiseRun, registryConfig, startConsole } from "./helpers.js";

const quiet = createLogger({ test: true }, "silent");

/** A drift report in the stored contract (src/monitoring/check-drift.ts): seeded runs have no input profile to check. */
async function seedDrift(store: Store, run: SeededRun, psi: number): Promise<void> {
  const findings = [
    { feature: "tenure_months", kind: "numeric", severity: psi >= 0.25 ? "alert" : "ok", psi, reason: `PSI ${psi}` },
    { feature: "contract_type", kind: "categorical", severity: "ok", psi: psi / 4, reason: `PSI ${psi / 4}` },
  ];
  await saveDriftReport(store, {
    run_id: run.runId,
    model_name: "churn",
    model_version: "1",
    as_of: run.asOf,
    severity: psi >= 0.25 ? "alert" : "ok",
    max_psi: psi,
    rows_profiled: run.customers.length,
    report: JSON.stringify({ run_id: run.runId, findings }),
    created_at: `${run.asOf}T07:00:00.000Z`,
  });
}

describe.each(storeTargets)("campaign, models and monitoring pages ($name)", (target) => {
  let store: Store;
  let server: ConsoleServer;
  let settings: Config;
  let older: SeededRun;
  let latest: SeededRun;

  beforeAll(async () => {
    store = await openStore(await target.fresh());
    older = await seedRun(store, { n: 600, asOf: "2026-09-01", seed: 8 });
    latest = await seedRun(store, { n: 800, asOf: "2026-10-01", seed: 9 });
    await addUsers(store);
    settings = registryConfig(inject("fixture"));
    server = await startConsole(store, {}, settings);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it("previews a campaign with the counts the plan then records, plans it as operator, and sends it to the export file after confirmation", async () => {
    const operator = new Client(server.base);
    await operator.signIn("operator");
    const query = "name=winback&rule=band&band=high&budget=40&control_share=0.25&cooldown_days=0";
    const fragment = await (await operator.get(`/campaigns/preview?${query}`)).text();
    const expected = await previewCampaign(store, {
      name: "winback",
      run: "latest",
      rule: { kind: "band", band: "high" },
      budget: 40,
      controlShare: 0.25,
      cooldownDays: 0,
      modelBands: registeredBands(settings),
    });
    const count = (name: string): string | undefined => new RegExp(`data-count="${name}">([^<]+)<`).exec(fragment)?.[1];
    expect(count("matching")).toBe(String(latest.customers.filter((c) => c.band === "high").length));
    expect(count("treated")).toBe(String(expected.counts.treated));
    expect(count("control")).toBe(String(expected.counts.control));
    expect(expected.counts.treated).toBeLessThanOrEqual(40);
    expect(await countRows(store, "campaigns")).toBe(0);

    const csrf = await operator.token("/campaigns/new");
    const planned = await operator.request("POST", "/campaigns", {
      _csrf: csrf,
      step: "plan",
      ...Object.fromEntries(new URLSearchParams(query)),
    });
    expect(planned.status).toBe(303);
    expect(planned.headers.get("location")).toBe("/console/campaigns/winback?done=planned");
    const members = await campaignMembers(store, "winback");
    expect(members.filter((m) => m.arm === "treatment")).toHaveLength(expected.counts.treated);
    expect(members.filter((m) => m.arm === "control")).toHaveLength(expected.counts.control);

    const page = await (await operator.get("/campaigns/winback")).text();
    expect(page).toContain('data-state="pending">' + String(expected.counts.treated));

    // Sending needs the confirmation box; without it nothing is sent and the field is named.
    const sendToken = await operator.token("/campaigns/winback/send");
    const unconfirmed = await operator.request("POST", "/campaigns/winback/send", { _csrf: sendToken });
    expect(unconfirmed.status).toBe(400);
    expect(await unconfirmed.text()).toContain("confirm: tick the box");
    expect(await countRows(store, "campaign_messages")).toBe(expected.counts.treated);
    const sent = await operator.request("POST", "/campaigns/winback/send", { _csrf: sendToken, confirm: "yes" });
    expect(sent.status).toBe(303);
    const file = `${settings.home}/exports/winback.jsonl`;
    expect(existsSync(file)).toBe(true);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { customer_id: string }).customer_id).sort()).toEqual(
      members
        .filter((m) => m.arm === "treatment")
        .map((m) => m.customer_id)
        .sort(),
    );
    expect((await listAudit(store)).map((a) => a.action)).toEqual(expect.arrayContaining(["campaign.plan", "campaign.send"]));

    // Outcomes arrive: the results page shows churn per arm with the reduction's interval as a chart.
    await upsertOutcomes(
      store,
      members.map((m, k) => ({
        customer_id: m.customer_id,
        observed_at: "2026-11-15",
        churned: (m.arm === "control" ? k % 2 : k % 5) === 0 ? 1 : 0,
        source: "test",
        ingested_at: new Date().toISOString(),
      })),
    );
    const results = await (await operator.get("/campaigns/winback")).text();
    expect(results).toMatch(/95% CI/);
    expect((results.match(/class="ci"/g) ?? []).length).toBe(3);
  });

  it("names the field of a bad campaign form, and refuses a viewer's plan with 403, recording nothing", async () => {
    const operator = new Client(server.base);
    await operator.signIn("operator");
    const bad = await operator.get("/campaigns/preview?rule=threshold&threshold=1.5");
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("threshold: expected a number from 0 to 1");
    const missing = await operator.get("/campaigns/preview?rule=band");
    expect(await missing.text()).toContain("band: choose the lowest risk band");
    const csrf = await operator.token("/campaigns/new");
    const budget = await operator.request("POST", "/campaigns", { _csrf: csrf, name: "bad-budget", budget: "-3" });
    expect(budget.status).toBe(400);
    const html = await budget.text();
    expect(html).toContain("budget: expected a whole number from 1");
    expect(html).toMatch(/id="c-budget" name="budget"[^>]*aria-invalid="true"/);

    const before = await countRows(store, "campaigns");
    const viewer = new Client(server.base);
    await viewer.signIn("viewer");
    const viewerToken = await viewer.token("/campaigns/new");
    const refused = await viewer.request("POST", "/campaigns", { _csrf: viewerToken, name: "by-viewer", step: "plan" });
    expect(refused.status).toBe(403);
    expect(await countRows(store, "campaigns")).toBe(before);
  });

  it("lists the registered versions with metrics beside the baselines, and promotes only as admin, confirmed and audited", async () => {
    const viewer = new Client(server.base);
    await viewer.signIn("viewer");
    const page = await (await viewer.get("/models")).text();
    expect(page).toContain("v1");
    expect(page).toContain("champion");
    expect(page).toContain("baseline: logistic");
    expect(page).not.toContain("/models/promote?version=");
    expect((await viewer.get("/models/promote?version=1")).status).toBe(403);
    const viewerToken = await viewer.token("/models");
    expect((await viewer.request("POST", "/models/promote", { _csrf: viewerToken, version: "1", confirm: "yes" })).status).toBe(403);
    expect((await viewer.request("POST", "/models/rollback", { _csrf: viewerToken, confirm: "yes" })).status).toBe(403);
    expect((await listAudit(store)).filter((a) => a.action.startsWith("model."))).toEqual([]);

    const report = await viewer.get("/models/1/report/report.html");
    expect(report.status).toBe(200);
    expect(report.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect((await viewer.get("/models/1/report/..%2Fmlflow.db")).status).toBe(404);

    const admin = new Client(server.base);
    await admin.signIn("admin");
    const token = await admin.token("/models/promote?version=1");
    const unconfirmed = await admin.request("POST", "/models/promote", { _csrf: token, version: "1" });
    expect(unconfirmed.status).toBe(400);
    expect(await unconfirmed.text()).toContain("confirm: tick the box");
    const unknown = await admin.request("POST", "/models/promote", { _csrf: token, version: "x1", confirm: "yes" });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("version: expected a registered version number");
    const promoted = await admin.request("POST", "/models/promote", { _csrf: token, version: "1", confirm: "yes" });
    expect(promoted.status).toBe(303);
    const audited = (await listAudit(store)).filter((a) => a.action === "model.promote");
    expect(audited).toHaveLength(1);
    expect(audited[0]?.user_name).toBe("admin");
    // With one version there is no earlier champion: the trainer's refusal (its "not found" exit) is shown, not a 500.
    const rollback = await admin.request("POST", "/models/rollback", { _csrf: token, confirm: "yes" });
    expect(rollback.status).toBe(404);
    expect(await rollback.text()).toContain("no previous champion");
  });

  it("shows drift per feature, the estimated band with realised points, and names a bad metric", async () => {
    await seedDrift(store, older, 0.05);
    await seedDrift(store, latest, 0.31);
    const fixture = inject("fixture");
    for (const run of [older, latest]) await estimateRun({ store, config: settings, log: quiet }, run.runId, { bundleDir: fixture.bundleDir });
    // Labels for the older run's customers (true churn drawn by the seeded probability), so a realised point exists.
    await realiseRun(store, settings, older, "2026-09-20");
    const viewer = new Client(server.base);
    await viewer.signIn("viewer");
    const res = await viewer.get("/monitoring");
    expect(res.status).toBe(200);
    const html = await res.text();
    const chart = /<figure class="chart" id="estimate-chart">([\s\S]*?)<\/figure>/.exec(html)?.[1] ?? "";
    expect(chart).toContain("<polygon");
    expect((chart.match(/class="realised"/g) ?? []).length).toBeGreaterThan(0);
    expect(html).toContain("tenure_months");
    expect(html).toContain("contract_type");
    expect(html).toMatch(/<td>v1<\/td><td>2026-09<\/td>/);
    const bad = await viewer.get("/monitoring?metric=accuracy");
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("metric: expected one of recall, precision, roc_auc");
  });
});
