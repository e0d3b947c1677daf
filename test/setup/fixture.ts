import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import "vitest";
import type { TestProject } from "vitest/node";
import { syntheticTrainArgs } from "../../src/model/trainer.js";

/**
 * One real model for the whole test run: synthetic customers → the Python trainer → a registered, promoted
 * version in a local MLflow store. Cached by a hash of the trainer's sources, so a second local run reuses it;
 * CI starts clean and trains it once.
 */
export interface Fixture {
  root: string;
  home: string;
  python: string;
  dataPath: string;
  bundleDir: string;
  version: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    fixture: Fixture;
  }
}

const ROOT = join(import.meta.dirname, "..", "..");

function hashTree(dir: string, h = createHash("sha256")): ReturnType<typeof createHash> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === "__pycache__" || name.startsWith(".")) continue;
    if (statSync(p).isDirectory()) hashTree(p, h);
    else h.update(relative(ROOT, p)).update(readFileSync(p));
  }
  return h;
}

function trainer(python: string, home: string, args: string[]): string {
  return execFileSync(python, ["-m", "churnops_trainer", ...args], {
    cwd: ROOT,
    env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
}

function build(python: string, home: string, manifest: string): void {
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const dataPath = join(home, "customers.parquet");
  trainer(python, home, ["synth", "--rows", "4000", "--seed", "11", "--out", dataPath]);
  const train = JSON.parse(trainer(python, home, [...syntheticTrainArgs(dataPath), "--seed", "42", "--json"])) as {
    version: string | number;
    bundle_path: string;
  };
  trainer(python, home, ["promote", "--version", String(train.version), "--json"]);
  const fixture: Fixture = { root: ROOT, home, python, dataPath, bundleDir: train.bundle_path, version: String(train.version) };
  writeFileSync(manifest, JSON.stringify(fixture, null, 2));
}

export default function setup(project: TestProject): void {
  const python = join(ROOT, "trainer", ".venv", "bin", "python");
  if (!existsSync(python)) throw new Error(`${python} is missing: run \`make setup\` first`);
  const key = hashTree(join(ROOT, "trainer", "src"))
    .update(readFileSync(join(ROOT, "trainer", "pyproject.toml")))
    .digest("hex")
    .slice(0, 16);
  const base = join(ROOT, ".churnops-test");
  const home = join(base, `fixture-${key}`);
  const manifest = join(home, "fixture.json");
  const lock = `${home}.lock`;
  mkdirSync(base, { recursive: true });
  // Several test runs may start at once (developers, CI): one builds the fixture, the others wait for it.
  while (!existsSync(manifest)) {
    try {
      mkdirSync(lock);
    } catch {
      if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      else execFileSync("sleep", ["1"]);
      continue;
    }
    try {
      if (!existsSync(manifest)) build(python, home, manifest);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  project.provide("fixture", JSON.parse(readFileSync(manifest, "utf8")) as Fixture);
}
