import { mkdirSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { reasonsOf } from "../../src/store/read/customer-reasons.js";
import { addUsers, Client, type ConsoleServer, registryConfig, startConsole } from "../console/helpers.js";
import { scoreFixtureRun } from "../console/scored-run.js";
import { storeTargets } from "../helpers/stores.js";
import { ARGS, CHROMIUM, OUT, seriousViolations, shot, signIn } from "./browser.js";

const fixture = inject("fixture");

describe("a customer's reasons in a real browser (SQLite)", () => {
  let store: Store;
  let server: ConsoleServer;
  let browser: Browser;
  let runId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    store = await openStore(await (storeTargets[0] as (typeof storeTargets)[number]).fresh());
    runId = (await scoreFixtureRun(store, 4)).runId;
    await addUsers(store);
    server = await startConsole(store, {}, registryConfig(fixture));
    // The first page of a run resolves its model's bundle through the trainer (this copied home's registry cache
    // names the original's store): done here, without the browser's 30 s navigation limit on a loaded machine.
    const warm = new Client(server.base);
    await warm.signIn("viewer");
    expect((await warm.get("/risk")).status).toBe(200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
  });

  it("goes from the risk list's top reason to the customer's waterfall, in English and in Japanese", async () => {
    const page = await signIn(browser, server.base, "viewer", pageErrors);
    await page.getByRole("link", { name: "Risk list" }).click();
    const firstRow = page.locator("table.risk tbody tr").first();
    const id = (await firstRow.locator("td:first-child a").textContent()) as string;
    const stored = (await reasonsOf(store, runId, [id])).get(id) ?? [];
    expect(stored.length).toBeGreaterThan(0);
    // The list's last column is the first stored reason, its sentence on hover.
    expect(await firstRow.locator("td:last-child span").getAttribute("title")).toBe(stored[0]?.text);
    await shot(page, "08-risk-top-reason");
    expect(await seriousViolations(page)).toEqual([]);

    await firstRow.locator("td:first-child a").click();
    await page.waitForURL(new RegExp(`/customers/${id}$`));
    const chart = page.locator("figure.waterfall svg");
    await expect.poll(() => chart.count()).toBe(1);
    // One bar per stored reason, one for the other features; baseline and customer are markers.
    expect(await chart.locator("rect.raises, rect.lowers").count()).toBe(stored.length + 1);
    expect(await page.locator("table.reasons tbody tr").count()).toBe(stored.length);
    await shot(page, "09-customer-reasons");
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByRole("link", { name: "日本語" }).click();
    await expect.poll(() => page.getByRole("heading", { name: "この顧客が解約しそうな理由" }).count()).toBe(1);
    expect(await page.locator("table.reasons tbody tr td:last-child").first().textContent()).toContain("リスクを最も高めています");
    await shot(page, "10-customer-reasons-ja");
    expect(await seriousViolations(page)).toEqual([]);
    expect(pageErrors, JSON.stringify(pageErrors)).toEqual([]);
  });
});
