import { copyFileSync, cpSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import type { SnakeKeys } from "../../src/cli/context.js";
import { loadConfig } from "../../src/config.js";
import type { DailySummary } from "../../src/pipeline/daily.js";
import { demoDataPath } from "../../src/pipeline/demo.js";
import { runCli } from "../helpers/cli.js";

const fixture = inject("fixture");
const EXAMPLE = join(fixture.root, "examples", "churnops.toml");

describe("the example churnops.toml", () => {
  it("points the daily job at the data `make demo` writes", () => {
    const cwd = mkdtempSync(join(tmpdir(), "churnops-example-"));
    const config = loadConfig({ file: EXAMPLE, env: {}, cwd });
    expect(join(cwd, config.daily.data ?? "")).toBe(demoDataPath(join(cwd, ".churnops"), 20000, 7));
  });

  it("is accepted by `daily` as it is, which scores, plans its campaign and exports it", async () => {
    // A folder laid out as after `make demo`: the data folder with a registered champion and the demo's customers.
    const cwd = mkdtempSync(join(tmpdir(), "churnops-example-"));
    const home = join(cwd, ".churnops");
    cpSync(fixture.home, home, { recursive: true });
    const data = demoDataPath(home, 20000, 7);
    mkdirSync(dirname(data), { recursive: true });
    copyFileSync(fixture.dataPath, data);
    // The CLI runs from source here: tsx (also in its worker threads) is resolved from the working directory.
    symlinkSync(join(fixture.root, "node_modules"), join(cwd, "node_modules"));
    const env = { MLFLOW_TRACKING_URI: "" };
    const res = await runCli(["--config", EXAMPLE, "daily", "--date", "2026-11-03", "--json"], env, cwd);
    expect(res.code, res.stderr).toBe(0);
    const summary = JSON.parse(res.stdout) as SnakeKeys<DailySummary>;
    expect(summary.score).toMatchObject({ status: "complete", model_version: fixture.version });
    expect(summary.campaigns).toHaveLength(1);
    expect(summary.campaigns[0]).toMatchObject({ name: "winback-2026-11-03", plan: { status: "planned" }, send: { adapter: "export", dead: 0 } });
    expect(summary.campaigns[0]?.plan.treated).toBeGreaterThan(0);
    expect(summary.model_bands?.map((b) => b.name)).toEqual(["high", "medium", "low"]);
  });
});
