import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { clearResolveCache, loadModel, resolveBundle } from "../../src/model/registry.js";
import { CACHE_FILE } from "../../src/model/registry-cache.js";
import { KEY_ENV } from "../../src/model/signing.js";
import { syntheticTrainArgs } from "../../src/model/trainer.js";
import { buildApp } from "../../src/server/app.js";
import { ApiKeys } from "../../src/server/auth.js";
import { loadPair, ModelHolder } from "../../src/server/models.js";
import { runCli } from "../helpers/cli.js";

/**
 * A private embedded MLflow store with three versions: v1 and v2 take the same columns, v3 drops one. The
 * TypeScript side resolves them from the registry cache the trainer writes, without starting Python.
 */
const fixture = inject("fixture");
const ADMIN = "admin-key-0123456789abcdef";
const NO_PYTHON = "/nonexistent/python";
let home = "";
let tenRows = "";

function trainer(args: string[]): string {
  return execFileSync(fixture.python, ["-m", "churnops_trainer", ...args, "--json"], {
    cwd: fixture.root,
    env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
}

function config(python = fixture.python): Config {
  return loadConfig({ env: { CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "", CHURNOPS_PYTHON: python }, cwd: home });
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "", ...env });
const cachePath = (): string => join(home, CACHE_FILE);

async function champion(python = fixture.python): Promise<string> {
  clearResolveCache();
  return (await resolveBundle(config(python), "champion")).version;
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "churnops-registry-cache-"));
  tenRows = join(home, "ten.csv");
  trainer(["synth", "--rows", "10", "--seed", "5", "--out", tenRows]);
  trainer([...syntheticTrainArgs(fixture.dataPath), "--seed", "1"]);
  trainer([...syntheticTrainArgs(fixture.dataPath), "--seed", "2"]);
  const narrower = syntheticTrainArgs(fixture.dataPath).map((a) => (a === "true_churn_prob" ? "true_churn_prob,num_logins_30d" : a));
  trainer([...narrower, "--seed", "3"]);
  trainer(["promote", "--version", "1"]);
}, 600_000);

afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});

describe("resolving through the registry cache", () => {
  it("resolves the champion with no Python at all, with the digest recorded at registration", async () => {
    clearResolveCache();
    const resolved = await resolveBundle(config(NO_PYTHON), "champion");
    expect(resolved.version).toBe("1");
    expect(resolved.registered?.digest).toMatch(/^[0-9a-f]{64}$/);
    const model = await loadModel(config(NO_PYTHON), "2");
    expect(model.version).toBe("2");
    await model.close();
  });

  it("a promote is seen by the next score, still without Python", async () => {
    trainer(["promote", "--version", "2"]);
    const res = await cli(["score", "--data", tenRows, "--no-store", "--out", join(home, "s.csv"), "--json"], { CHURNOPS_PYTHON: NO_PYTHON });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/churn-v2/);
  });

  it("a promote is seen by a running server on /admin/reload", async () => {
    clearResolveCache();
    const c = config(NO_PYTHON);
    const refs = { champion: "champion", challenger: null };
    const app = await buildApp({
      config: { ...c.server, access_log: false },
      models: new ModelHolder(await loadPair(c, refs, { fresh: false }), c.server.unknown_fields),
      store: null,
      log: createLogger({ test: true }, "silent"),
      keys: new ApiKeys(["api-key-0123456789abcdef"], ADMIN),
      loadModels: () => loadPair(c, refs, { fresh: true }),
    });
    try {
      trainer(["promote", "--version", "1"]);
      const res = await app.inject({ method: "POST", url: "/admin/reload", headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ champion: { version: "1", previous: { version: "2" } } });
    } finally {
      await app.close();
    }
  });

  it("a deleted cache falls back to the trainer, says so, and the trainer writes it again", async () => {
    rmSync(cachePath());
    const res = await cli(["score", "--data", tenRows, "--no-store", "--out", join(home, "s.csv")], { CHURNOPS_LOG_LEVEL: "info" });
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/registry cache not used \(registry-cache.json is missing\); asking the trainer/);
    expect(existsSync(cachePath())).toBe(true);
    expect(await champion(NO_PYTHON)).toBe("1");
  });

  it("an edited cache is never used: without Python it fails, with Python the registry's answer wins", async () => {
    const original = readFileSync(cachePath(), "utf8");
    writeFileSync(cachePath(), original.replace('"champion": "1"', '"champion": "3"'));
    await expect(champion(NO_PYTHON)).rejects.toThrow(/trainer is not installed/);
    expect(await champion()).toBe("1");
  });

  it("a resealed edit is refused when a signing key is configured", async () => {
    const [body] = readFileSync(cachePath(), "utf8").split("\n");
    const edited = (body ?? "").replace('"champion": "1"', '"champion": "3"');
    writeFileSync(cachePath(), `${edited}\nsha256:${createHash("sha256").update(edited).digest("hex")}\n`);
    process.env[KEY_ENV] = "a-test-signing-key";
    try {
      await expect(champion(NO_PYTHON)).rejects.toThrow(/trainer is not installed/);
    } finally {
      delete process.env[KEY_ENV];
    }
    trainer(["models"]);
  });

  it("a cache older than the store (any write to mlflow.db) falls back", async () => {
    expect(await champion(NO_PYTHON)).toBe("1");
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(home, "mlflow.db"), later, later);
    await expect(champion(NO_PYTHON)).rejects.toThrow(/trainer is not installed/);
    expect(await champion()).toBe("1");
  });

  it("refuses a cached bundle edited after registration (bundle_invalid, digest)", async () => {
    const path = join(home, "bundles", "churn", "v1", "bundle.json");
    const saved = join(home, "v1-bundle.json");
    copyFileSync(path, saved);
    const json = JSON.parse(readFileSync(path, "utf8")) as { thresholds: { operating: number } };
    json.thresholds.operating = 0.9;
    writeFileSync(path, JSON.stringify(json));
    try {
      clearResolveCache();
      await expect(loadModel(config(NO_PYTHON), "champion")).rejects.toMatchObject({
        code: "bundle_invalid",
        message: expect.stringMatching(/registry recorded/),
      });
      const res = await cli(["score", "--data", tenRows, "--no-store", "--out", join(home, "s.csv")], { CHURNOPS_PYTHON: NO_PYTHON });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/refusing a modified bundle/);
      expect(res.stderr).not.toMatch(/internal error|\n\s+at /);
    } finally {
      copyFileSync(saved, path);
    }
  });
});

describe("models, promote and report", () => {
  it("models shows each version's data source, fingerprint and schema, from the cache", async () => {
    trainer(["models"]);
    const res = await cli(["models", "--json"], { CHURNOPS_PYTHON: NO_PYTHON });
    expect(res.code).toBe(0);
    const versions = JSON.parse(res.stdout) as { version: string; data_source: string; data_fingerprint: string; schema_summary: string }[];
    expect(versions.map((v) => v.version)).toEqual(["3", "2", "1"]);
    expect(versions[0]).toMatchObject({ data_source: fixture.dataPath, schema_summary: "6 features (4 numeric, 2 categorical)" });
    expect(versions[2]?.schema_summary).toBe("7 features (5 numeric, 2 categorical)");
    expect(versions[2]?.data_fingerprint).toMatch(/^[0-9a-f]{8,}$/);
    const table = await cli(["models"], { CHURNOPS_PYTHON: NO_PYTHON });
    expect(table.stdout).toMatch(/fingerprint\s+schema\s+data/);
  });

  it("refuses to promote a version whose input columns differ, naming them, unless --force", async () => {
    const refused = await cli(["promote", "--version", "3"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/no longer takes num_logins_30d/);
    expect(refused.stderr).toMatch(/--force/);
    expect(await champion(NO_PYTHON)).toBe("1");
    const forced = await cli(["promote", "--version", "3", "--force", "--json"]);
    expect(forced.code).toBe(0);
    expect(await champion(NO_PYTHON)).toBe("3");
  });

  it("report --version N prints that version's training report", async () => {
    clearResolveCache();
    const run = (await resolveBundle(config(NO_PYTHON), "2")).runId;
    const res = await cli(["report", "--version", "2", "--json"], { CHURNOPS_PYTHON: NO_PYTHON });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ report: join(home, "reports", String(run), "report.html") });
    const bad = await cli(["report", "--version", "two"], { CHURNOPS_PYTHON: NO_PYTHON });
    expect(bad.code).toBe(2);
  });
});
