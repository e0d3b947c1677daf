import { mkdirSync, readFileSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { estimateRun } from "../../src/monitoring/check-estimate.js";
import { listAudit } from "../../src/store/audit.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { saveDriftReport } from "../../src/store/monitoring.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { type SeededRun, seedRun } from "../campaigns/seed.js";
import { addUsers, type ConsoleServer, realiseRun, registryConfig, startConsole } from "../console/helpers.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { ARGS, CHROMIUM, OUT, seriousViolations, shot, signIn } from "./browser.js";

const quiet = createLogger({ test: true }, "silent");

/** Console errors besides the 400s and 403s these tests provoke on purpose (bad input, a viewer's refusal). */
const unexpected = (errors: readonly string[]): string[] => errors.filter((e) => !/responded with a status of 40[03] /.test(e));

describe("campaign, models and monitoring pages in a real browser (SQLite)", () => {
  let store: Store;
  let server: ConsoleServer;
  let browser: Browser;
  let settings: Config;
  let older: SeededRun;
  let latest: SeededRun;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    store = await openStore(await (storeTargets[0] as (typeof storeTargets)[number]).fresh());
    older = await seedRun(store, { n: 500, asOf: "2026-09-01", seed: 21 });
    latest = await seedRun(store, { n: 700, asOf: "2026-10-01", seed: 22 });
    await addUsers(store);
    settings = registryConfig(inject("fixture"));
    server = await startConsole(store, {}, settings);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
  });

  it("builds a campaign with the live preview, names a bad field, plans it, sends it to the export file and shows the result with its interval", async () => {
    const page = await signIn(browser, server.base, "operator", pageErrors);
    await page.getByRole("link", { name: "Campaigns" }).click();
    await page.getByRole("link", { name: "Build a campaign" }).click();
    await page.getByLabel("Campaign name").fill("winback-oct");
    await page.getByLabel("Risk rule").selectOption("band");
    await page.getByLabel("Lowest band (band rule)").fill("high");
    await page.getByLabel("Budget (most offers)").fill("-5");
    // The preview answers as the form changes: a bad budget is named, no count is shown.
    await expect.poll(() => page.locator("#preview").textContent()).toContain("budget: expected a whole number from 1");
    await shot(page, "10-campaign-bad-budget");
    await page.getByLabel("Budget (most offers)").fill("60");
    await page.getByLabel("Control share").fill("0.2");
    await expect
      .poll(() => page.locator('#preview [data-count="matching"]').textContent())
      .toBe(String(latest.customers.filter((c) => c.band === "high").length));
    const treated = Number(await page.locator('#preview [data-count="treated"]').textContent());
    expect(treated).toBeGreaterThan(0);
    expect(treated).toBeLessThanOrEqual(60);
    expect(await countRows(store, "campaigns")).toBe(0);
    await shot(page, "11-campaign-preview");
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByRole("button", { name: "Plan the campaign" }).click();
    await page.waitForURL(/\/campaigns\/winback-oct\?done=planned$/);
    const members = await campaignMembers(store, "winback-oct");
    expect(members.filter((m) => m.arm === "treatment")).toHaveLength(treated);
    await page.getByRole("link", { name: "Send the campaign" }).click();
    await page.waitForURL(/\/send$/);
    expect(await seriousViolations(page)).toEqual([]);
    await shot(page, "12-campaign-send-confirm");
    await page.getByLabel(`Send ${treated} messages now`).check();
    await page.getByRole("button", { name: "Send the campaign" }).click();
    await page.waitForURL(/done=sent$/);
    const exported = readFileSync(`${settings.home}/exports/winback-oct.jsonl`, "utf8").trimEnd().split("\n");
    expect(exported).toHaveLength(treated);
    expect(await page.locator('[data-state="delivered"]').textContent()).toBe(String(treated));

    await upsertOutcomes(
      store,
      members.map((m, k) => ({
        customer_id: m.customer_id,
        observed_at: "2026-10-20",
        churned: (m.arm === "control" ? k % 2 : k % 4) === 0 ? 1 : 0,
        source: "test",
        ingested_at: new Date().toISOString(),
      })),
    );
    await page.reload();
    expect(await page.locator("figure.chart svg line.ci").count()).toBe(3);
    await expect.poll(() => page.getByText(/Churn reduction .* \(95% interval/).count()).toBe(1);
    await shot(page, "13-campaign-results");
    expect(await seriousViolations(page)).toEqual([]);
    expect((await listAudit(store)).map((a) => a.action)).toEqual(expect.arrayContaining(["campaign.plan", "campaign.send"]));
    expect(unexpected(pageErrors)).toEqual([]);
  });

  it("promotes as admin after a confirmation; a viewer sees no promote button and is refused with 403", async () => {
    const viewer = await signIn(browser, server.base, "viewer", pageErrors);
    await viewer.getByRole("link", { name: "Models" }).click();
    await expect.poll(() => viewer.getByRole("heading", { level: 1 }).textContent()).toBe("Models");
    expect(await viewer.getByRole("link", { name: /^Promote v/ }).count()).toBe(0);
    await shot(viewer, "14-models");
    expect(await seriousViolations(viewer)).toEqual([]);
    const refused = await viewer.goto(`${server.base}/models/rollback`);
    expect(refused?.status()).toBe(403);
    await expect.poll(() => viewer.getByRole("alert").textContent()).toContain("Nothing was changed");

    const admin = await signIn(browser, server.base, "admin", pageErrors);
    await admin.goto(`${server.base}/models`);
    await admin.getByRole("link", { name: "Roll back the champion" }).click();
    await admin.getByRole("button", { name: "Roll back the champion" }).click();
    // Unconfirmed: the field is named and nothing happened.
    await expect.poll(() => admin.getByRole("alert").textContent()).toContain("confirm: tick the box");
    await admin.goto(`${server.base}/models/promote?version=1`);
    await shot(admin, "15-models-promote-confirm");
    expect(await seriousViolations(admin)).toEqual([]);
    await admin.getByLabel("I have checked the numbers and want to do this").check();
    await admin.getByRole("button", { name: "Promote v1" }).click();
    await admin.waitForURL(/\/models\?done=promote$/);
    await expect.poll(() => admin.getByRole("status").textContent()).toContain("Promotion done");
    expect((await listAudit(store)).filter((a) => a.action === "model.promote").map((a) => a.user_name)).toEqual(["admin"]);
  });

  it("shows the monitoring page with the estimated band and realised points, in English and Japanese", async () => {
    for (const [run, psi] of [
      [older, 0.04],
      [latest, 0.28],
    ] as const) {
      await saveDriftReport(store, {
        run_id: run.runId,
        model_name: "churn",
        model_version: "1",
        as_of: run.asOf,
        severity: psi >= 0.25 ? "alert" : "ok",
        max_psi: psi,
        rows_profiled: run.customers.length,
        report: JSON.stringify({
          findings: [
            { feature: "tenure_months", kind: "numeric", severity: psi >= 0.25 ? "alert" : "ok", psi, reason: `PSI ${psi}` },
            { feature: "monthly_charges", kind: "numeric", severity: "ok", psi: psi / 3, reason: `PSI ${psi / 3}` },
          ],
        }),
        created_at: `${run.asOf}T07:00:00.000Z`,
      });
      await estimateRun({ store, config: settings, log: quiet }, run.runId, { bundleDir: inject("fixture").bundleDir });
    }
    await realiseRun(store, settings, older, "2026-09-25");
    const page = await signIn(browser, server.base, "viewer", pageErrors);
    await page.getByRole("link", { name: "Monitoring" }).click();
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("Monitoring");
    expect(await page.locator("#estimate-chart svg polygon").count()).toBe(1);
    expect(await page.locator("#estimate-chart svg path.realised").count()).toBeGreaterThan(0);
    await shot(page, "16-monitoring");
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel("Metric").selectOption("roc_auc");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/metric=roc_auc/);
    const bad = await page.goto(`${server.base}/monitoring?metric=f1`);
    expect(bad?.status()).toBe(400);
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("metric: expected one of");

    const ja = await signIn(browser, server.base, "operator", pageErrors, "ja-JP");
    await ja.goto(`${server.base}/monitoring`);
    await expect.poll(() => ja.getByRole("heading", { level: 1 }).textContent()).toBe("モニタリング");
    await shot(ja, "17-monitoring-ja");
    expect(await seriousViolations(ja)).toEqual([]);
    await ja.goto(`${server.base}/campaigns/new`);
    await expect.poll(() => ja.locator('#preview [data-count="matching"]').count()).toBe(1);
    await shot(ja, "18-campaign-builder-ja");
    expect(await seriousViolations(ja)).toEqual([]);
    await ja.goto(`${server.base}/models`);
    await shot(ja, "19-models-ja");
    expect(await seriousViolations(ja)).toEqual([]);
    await ja.goto(`${server.base}/campaigns/winback-oct`);
    await shot(ja, "20-campaign-results-ja");
    expect(await seriousViolations(ja)).toEqual([]);
    expect(unexpected(pageErrors)).toEqual([]);
  });
});
