import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import type { AlertSink } from "../../src/monitoring/alerts.js";
import type { Fixture } from "../setup/fixture.js";

export const workdir = (): string => mkdtempSync(join(tmpdir(), "churnops-monitor-"));

/** A synthetic table from the trainer's generator (the same one the fixture model was trained on). */
export function synth(fixture: Fixture, out: string, args: readonly string[]): string {
  execFileSync(fixture.python, ["-m", "churnops_trainer", "synth", "--out", out, ...args, "--json"], {
    cwd: fixture.root,
    env: { ...process.env, CHURNOPS_HOME: fixture.home },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out;
}

/** A private copy of the fixture's home, for tests that register, promote or roll back models. */
export function copyHome(fixture: Fixture): string {
  const home = join(workdir(), "home");
  cpSync(fixture.home, home, { recursive: true });
  return home;
}

export function testConfig(fixture: Fixture, storeUrl: string, home = fixture.home, overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: { CHURNOPS_HOME: home, CHURNOPS_DB_URL: storeUrl, CHURNOPS_PYTHON: fixture.python, MLFLOW_TRACKING_URI: "" },
    cwd: workdir(),
    ...overrides,
  });
}

export const quietLog = () => createLogger({}, "silent");

/** An alert sink that records what it would have posted. */
export function recordingSink(): AlertSink & { posted: unknown[] } {
  const posted: unknown[] = [];
  return {
    log: quietLog(),
    webhookUrl: "http://alerts.invalid/hook",
    timeoutMs: 1000,
    maxAttempts: 5,
    posted,
    fetch: async (_url, init) => {
      posted.push(JSON.parse(String(init?.body)));
      return new Response("ok", { status: 200 });
    },
  };
}
