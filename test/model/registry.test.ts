import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { clearResolveCache, loadModel, resolveBundle } from "../../src/model/registry.js";
import { syntheticTrainArgs } from "../../src/model/trainer.js";

const fixture = inject("fixture");
let server: ChildProcess | undefined;
let url = "";
let work = "";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const address = s.address();
      s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** A real MLflow tracking server on loopback, as a team would run it; the trainer registers a model into it. */
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "churnops-mlflow-"));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const mlflow = join(fixture.root, "trainer", ".venv", "bin", "mlflow");
  server = spawn(
    mlflow,
    [
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--backend-store-uri",
      `sqlite:///${join(work, "mlflow.db")}`,
      "--artifacts-destination",
      join(work, "artifacts"),
      "--workers",
      "1",
    ],
    { stdio: "ignore" },
  );
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("mlflow server did not start within 120 s");
    await new Promise((r) => setTimeout(r, 500));
  }
  const env = { ...process.env, CHURNOPS_HOME: join(work, "trainer-home"), MLFLOW_TRACKING_URI: url };
  const train = JSON.parse(
    execFileSync(fixture.python, ["-m", "churnops_trainer", ...syntheticTrainArgs(fixture.dataPath), "--json"], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }),
  ) as { version: string };
  execFileSync(fixture.python, ["-m", "churnops_trainer", "promote", "--version", String(train.version), "--json"], { env, stdio: "ignore" });
}, 300_000);

afterAll(() => {
  server?.kill("SIGTERM");
});

describe("resolving models through a remote MLflow server", () => {
  it("downloads the champion's bundle over MLflow's REST API, with no Python involved, and verifies it", async () => {
    clearResolveCache();
    const home = join(work, "consumer-home");
    const config = loadConfig({ env: { CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: url, CHURNOPS_PYTHON: "/nonexistent/python" }, cwd: work });
    const resolved = await resolveBundle(config, "champion");
    expect(resolved.aliases).toContain("champion");
    expect(resolved.bundlePath).toBe(join(home, "bundles", "churn", `v${resolved.version}`));
    expect(existsSync(join(resolved.bundlePath, "model.onnx"))).toBe(true);
    const model = await loadModel(config, resolved.version);
    expect(model.version).toBe(resolved.version);
    expect(model.golden.maxAbsDiff).toBeLessThanOrEqual(1e-6);
    await model.close();
  });

  it("says which alias or version is missing", async () => {
    clearResolveCache();
    const config = loadConfig({ env: { CHURNOPS_HOME: join(work, "h2"), MLFLOW_TRACKING_URI: url }, cwd: work });
    await expect(resolveBundle(config, "challenger2")).rejects.toThrow(/has no alias challenger2/);
    await expect(resolveBundle(config, "99")).rejects.toThrow(/has no version 99/);
  });
});
