import { mkdirSync, readFileSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { iterateRisk, parseRiskFilter, type RiskRow } from "../../src/store/read/risk.js";
import { type SeededRun, seedRun } from "../campaigns/seed.js";
import { addUsers, type ConsoleServer, startConsole } from "../console/helpers.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { ARGS, CHROMIUM, OUT, seriousViolations, shot, signIn } from "./browser.js";

describe("the console in a real browser (SQLite)", () => {
  let store: Store;
  let server: ConsoleServer;
  let browser: Browser;
  let latest: SeededRun;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    store = await openStore(await (storeTargets[0] as (typeof storeTargets)[number]).fresh());
    await seedRun(store, { n: 400, asOf: "2026-10-01", seed: 5 });
    latest = await seedRun(store, { n: 500, asOf: "2026-11-01", seed: 6 });
    await addUsers(store);
    server = await startConsole(store);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
  });

  const signedIn = (user: string, locale = "en-US"): Promise<Page> => signIn(browser, server.base, user, pageErrors, locale);

  it("signs in and shows the overview, with no serious accessibility violation", async () => {
    const page = await signedIn("viewer");
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("Overview");
    expect(await page.locator("figure.chart svg rect").count()).toBeGreaterThan(0);
    await shot(page, "01-overview");
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole("link", { name: "Runs" }).click();
    await page.waitForURL(/\/console\/runs$/);
    await shot(page, "02-runs");
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole("link", { name: "Audit log" }).click();
    expect(await seriousViolations(page)).toEqual([]);
    expect(pageErrors, JSON.stringify(pageErrors)).toEqual([]);
  });

  it("filters the risk list and exports exactly the store's rows for that filter", async () => {
    const page = await signedIn("viewer");
    await page.getByRole("link", { name: "Risk list" }).click();
    await page.getByLabel("Band").selectOption("high");
    await page.getByLabel("Lowest probability").fill("0.7");
    await page.getByLabel("Customer id contains").fill("1");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/band=high/);
    const shown = await page.locator("table.risk tbody tr td:first-child").allTextContents();
    expect(shown.length).toBeGreaterThan(0);
    await shot(page, "03-risk-filtered");
    expect(await seriousViolations(page)).toEqual([]);

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export CSV" }).click()]);
    const csv = readFileSync(await download.path(), "utf8")
      .trimEnd()
      .split("\n");
    expect(csv[0]).toBe("customer_id,probability,band,decision,run_id,model_version");
    const filter = parseRiskFilter({ band: "high", min_p: "0.7", q: "1" });
    const rows: RiskRow[] = [];
    for await (const chunk of iterateRisk(store, filter)) rows.push(...chunk);
    expect(csv.slice(1)).toEqual(rows.map((r) => [r.customer_id, r.probability, r.band, r.decision, r.run_id, r.model_version].join(",")));
    expect(rows.every((r) => r.run_id === latest.runId && r.band === "high" && r.probability >= 0.7 && r.customer_id.includes("1"))).toBe(true);
    // The page shows the first rows of the same list.
    expect(shown).toEqual(rows.slice(0, shown.length).map((r) => r.customer_id));
  });

  it("opens a customer, and refuses a viewer the operator's opt-out with 403, changing nothing", async () => {
    const page = await signedIn("viewer");
    await page.goto(`${server.base}/risk`);
    const first = page.locator("table.risk tbody tr td:first-child a").first();
    const id = (await first.textContent()) as string;
    await first.click();
    await page.waitForURL(new RegExp(`/customers/${id}$`));
    // One point per score run the customer was in (the newest ids are in the latest run only).
    expect(await page.locator("figure.chart svg circle").count()).toBe(await page.locator("#history + figure + table tbody tr").count());
    expect(await page.locator("figure.chart svg circle").count()).toBeGreaterThan(0);
    await shot(page, "04-customer");
    expect(await seriousViolations(page)).toEqual([]);

    const response = page.waitForResponse((r) => r.url().endsWith("/opt-out"));
    await page.getByRole("button", { name: "Record opt-out" }).click();
    expect((await response).status()).toBe(403);
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("Nothing was changed");
    await shot(page, "05-viewer-refused");
    expect(await countRows(store, "opt_outs")).toBe(0);
  });

  it("switches to Japanese and stays in it", async () => {
    const page = await signedIn("operator");
    await page.getByRole("link", { name: "日本語" }).click();
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("概要");
    expect(await page.locator("html").getAttribute("lang")).toBe("ja");
    await page.getByRole("link", { name: "リスク一覧" }).click();
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("リスク一覧");
    expect(await page.getByText(/2026年11月1日/).count()).toBeGreaterThan(0);
    await shot(page, "06-japanese-risk");
    expect(await seriousViolations(page)).toEqual([]);
  });

  it("serves Japanese from Accept-Language, sign-in page included", async () => {
    const page = await signedIn("admin", "ja-JP");
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("概要");
    await shot(page, "07-japanese-overview");
  });
});
