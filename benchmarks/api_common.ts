/**
 * Shared pieces of the API benchmarks: a trained bundle, our server as a child process, the original api.py
 * (extracted from ../shared/reference at run time into a temporary venv, never copied into the repository),
 * and small measuring helpers. Everything runs on loopback.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { syntheticTrainArgs } from "../src/model/trainer.js";

export const ROOT = join(import.meta.dirname, "..");
export const API_KEY = "bench-key-0123456789abcdef";
const REFERENCE = process.env.CHURNOPS_REFERENCE ?? join(ROOT, "..", "shared", "reference", "000_167714349d68cbf8.txt");

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export async function waitFor(url: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up within ${timeoutMs} ms`);
}

/** A bundle trained by the project's trainer on synthetic customers (the same recipe as the test fixture). */
export function trainBundle(work: string): string {
  const given = process.env.CHURNOPS_BENCH_BUNDLE;
  if (given !== undefined && given !== "") return given;
  const python = join(ROOT, "trainer", ".venv", "bin", "python");
  const home = join(work, "home");
  mkdirSync(home, { recursive: true });
  const env = { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" };
  const data = join(home, "customers.parquet");
  log("training a bundle with the project's trainer");
  execFileSync(python, ["-m", "churnops_trainer", "synth", "--rows", "5000", "--seed", "11", "--out", data], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "ignore", "ignore"],
  });
  const out = execFileSync(python, ["-m", "churnops_trainer", ...syntheticTrainArgs(data), "--seed", "42", "--json"], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 64 * 1024 * 1024,
  });
  return (JSON.parse(out) as { bundle_path: string }).bundle_path;
}

export interface Served {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
    });
}

/**
 * `churnops serve` from source (tsx transpiles at load; the running code is the same), with the production defaults
 * (access log, prediction log to SQLite) except the per-key rate limit, which a load generator would only measure.
 */
export async function startOurs(work: string, bundle: string, extraToml = ""): Promise<Served> {
  const home = join(work, "ours");
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, "churnops.toml"), `[server.rate_limit]\nmax = 0\n${extraToml}`);
  const port = await freePort();
  const logFd = openSync(join(home, "server.log"), "w");
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "benchmarks", "api_server.ts"), "serve", "--port", String(port), "--model", bundle], {
    cwd: ROOT,
    env: { ...process.env, CHURNOPS_HOME: home, CHURNOPS_CONFIG: join(home, "churnops.toml"), CHURNOPS_API_KEYS: API_KEY, CHURNOPS_LOG_LEVEL: "info" },
    stdio: ["ignore", logFd, logFd],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`);
  return { name: "churnops", url, pid: child.pid ?? 0, child, headers: { authorization: `Bearer ${API_KEY}` }, stop: stopper(child) };
}

/** The two ```python blocks of the reference text, by the file name in their first line. */
export function extractOriginal(dir: string): void {
  const text = readFileSync(REFERENCE, "utf8");
  const blocks = [...text.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  for (const file of ["train.py", "api.py"]) {
    const block = blocks.find((b) => b.split("\n", 1)[0]?.includes(`churn_prediction_project/${file}`));
    if (block === undefined) throw new Error(`no ${file} block in ${REFERENCE}`);
    writeFileSync(join(dir, file), block);
  }
  // train.py logs to MLflow; a no-op stand-in on PYTHONPATH (in the temp dir only) keeps the original untouched.
  mkdirSync(join(dir, "stubs", "mlflow"), { recursive: true });
  writeFileSync(
    join(dir, "stubs", "mlflow", "__init__.py"),
    [
      "import contextlib",
      "from . import sklearn",
      "def set_experiment(*a, **k): pass",
      "def log_params(*a, **k): pass",
      "def log_metric(*a, **k): pass",
      "@contextlib.contextmanager",
      "def start_run(*a, **k):",
      "    yield None",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "stubs", "mlflow", "sklearn.py"), "def log_model(*a, **k): pass\n");
}

const ORIGINAL_PACKAGES = ["fastapi", "uvicorn", "scikit-learn", "imbalanced-learn", "pandas", "joblib"];

/** A venv for the original (kept in the temp dir between runs, keyed by its package list). */
export function originalVenv(): string {
  const key = createHash("sha256").update(ORIGINAL_PACKAGES.join(",")).digest("hex").slice(0, 10);
  const venv = join(tmpdir(), `churnops-bench-original-${key}`);
  const python = join(venv, "bin", "python");
  if (!existsSync(join(venv, ".ready"))) {
    log(`creating ${venv} (pip install ${ORIGINAL_PACKAGES.join(" ")})`);
    execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
    execFileSync(python, ["-m", "pip", "install", "-q", ...ORIGINAL_PACKAGES], { stdio: ["ignore", "ignore", "inherit"] });
    writeFileSync(join(venv, ".ready"), "");
  }
  return python;
}

/** Train the original with its own train.py, then serve its api.py with one uvicorn worker. */
export async function startOriginal(work: string): Promise<Served> {
  const dir = mkdtempSync(join(work, "original-"));
  extractOriginal(dir);
  const python = originalVenv();
  const env = { ...process.env, PYTHONPATH: join(dir, "stubs") };
  log("training the original with its train.py");
  execFileSync(python, ["train.py"], { cwd: dir, env, stdio: ["ignore", "ignore", "inherit"] });
  const port = await freePort();
  const logFd = openSync(join(dir, "uvicorn.log"), "w");
  const child = spawn(python, ["-m", "uvicorn", "api:app", "--host", "127.0.0.1", "--port", String(port), "--workers", "1"], {
    cwd: dir,
    env,
    stdio: ["ignore", logFd, logFd],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`);
  return { name: "original api.py (uvicorn, 1 worker)", url, pid: child.pid ?? 0, child, headers: {}, stop: stopper(child) };
}

/** Customers valid for both APIs (the synthetic table has the original's columns and categories). */
export function customers(n: number, seed = 7): Record<string, number | string>[] {
  let s = seed;
  const rand = (): number => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const contracts = ["month-to-month", "one_year", "two_year"];
  const payments = ["credit_card", "bank_transfer", "electronic"];
  return Array.from({ length: n }, (_, i) => {
    const tenure = 1 + Math.floor(rand() * 71);
    const monthly = Math.round((20 + rand() * 80) * 100) / 100;
    return {
      customer_id: i,
      tenure_months: tenure,
      monthly_charges: monthly,
      total_charges: Math.round(monthly * tenure * 100) / 100,
      num_support_tickets: Math.floor(rand() * 6),
      num_logins_30d: Math.floor(rand() * 30),
      contract_type: contracts[Math.floor(rand() * 3)] ?? "one_year",
      payment_method: payments[Math.floor(rand() * 3)] ?? "credit_card",
    };
  });
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function summary(ms: number[]): { n: number; p50_ms: number; p99_ms: number; mean_ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    n: ms.length,
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    mean_ms: round(ms.reduce((a, b) => a + b, 0) / ms.length),
  };
}

/** Resident memory of a process, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

export interface CannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** What the latency numbers were measured with, for the report: the tool, where it ran, and its resolution. */
export function loadGenerator(): { tool: string; runs_as: string; latency_resolution: string } {
  const { version } = JSON.parse(readFileSync(join(ROOT, "node_modules", "autocannon", "package.json"), "utf8")) as { version: string };
  return {
    tool: `autocannon ${version}`,
    runs_as: "a separate Node.js process on the same machine, sharing its CPUs with the server",
    latency_resolution: "whole milliseconds, truncated (a p99 of 3 means 3 to 4 ms)",
  };
}

/**
 * autocannon POSTing `body` to `path`, in its own process so the load generator does not share the caller's event
 * loop; `onSecond` runs every second while it loads (to sample the server).
 */
export function autocannon(served: Served, path: string, body: string, connections: number, seconds: number, onSecond?: () => void): Promise<CannonJson> {
  const headers = Object.entries({ "content-type": "application/json", ...served.headers }).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const cli = join(ROOT, "node_modules", "autocannon", "autocannon.js");
  // The body goes in a file: a 1,000-customer batch is longer than one command-line argument may be (E2BIG).
  const bodyFile = join(mkdtempSync(join(tmpdir(), "churnops-bench-body-")), "body.json");
  writeFileSync(bodyFile, body);
  const argv = [cli, "-c", String(connections), "-d", String(seconds), "-j", "-m", "POST", ...headers, "-i", bodyFile, `${served.url}${path}`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    const timer = onSecond === undefined ? null : setInterval(onSecond, 1000);
    child.on("error", reject);
    child.on("close", (code) => {
      if (timer !== null) clearInterval(timer);
      rmSync(dirname(bodyFile), { recursive: true, force: true });
      if (code !== 0) reject(new Error(`autocannon exited ${code}`));
      else resolve(JSON.parse(out) as CannonJson);
    });
  });
}
