import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { expect } from "vitest";
import { PASSWORD } from "../console/helpers.js";

/** What the browser tests share: Debian's chromium, axe-core, screenshots and signing in. */

/** Debian's chromium, installed by `make setup`; never a downloaded browser build. */
export const CHROMIUM = process.env.CHURNOPS_CHROMIUM ?? "/usr/bin/chromium";
export const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
export const OUT = join(import.meta.dirname, "..", "..", "test-output", "browser");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core in the page (evaluated by the driver, so the page's CSP still forbids inline script for itself). */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    return (await axe.run()).violations;
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

/** A new browser context signed in as `user` through the sign-in form; console errors are collected in `errors`. */
export async function signIn(browser: Browser, base: string, user: string, errors: string[], locale = "en-US"): Promise<Page> {
  const context = await browser.newContext({ locale, acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${m.text()} ${m.location().url}`);
  });
  await page.goto(`${base}/`);
  await expect.poll(() => page.url()).toContain("/console/login");
  await page.getByLabel(locale.startsWith("ja") ? "ユーザー名" : "User name").fill(user);
  await page.getByLabel(locale.startsWith("ja") ? "パスワード" : "Password").fill(PASSWORD);
  await page.getByRole("button", { name: locale.startsWith("ja") ? "サインイン" : "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  return page;
}
