// Smoke test of the churnops image, run inside it by deploy/images/build.sh and stack-smoke.sh (Node built-ins
// only): the process is not root and finds no compiler; `churnops serve` starts on 127.0.0.1 with the given model
// (a bundle directory, or a reference such as `champion` resolved through MLFLOW_TRACKING_URI and downloaded),
// /readyz names the bundle's model, one /v1/predict answers the bundle's own golden probability (within the 1e-6
// the bundle contract allows), an invalid customer answers 422, and SIGTERM drains the server cleanly.
// Prints one JSON line; exits non-zero on the first failed check.
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const model = process.argv[2];
if (!model) throw new Error("usage: node smoke-api.mjs <bundle dir | model reference>");
const KEY = "smoke-key-0123456789abcdef";
const started = performance.now();

function fail(message) {
  console.error(`smoke: FAILED: ${message}`);
  process.exit(1);
}

function onPath(cmd) {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

if (process.getuid() === 0) fail("running as root");
const compilers = ["cc", "gcc", "g++", "c++", "clang", "make", "ld", "as"].filter(onPath);
if (compilers.length > 0) fail(`build tools in the image: ${compilers.join(", ")}`);

const home = mkdtempSync(join(tmpdir(), "churnops-smoke-"));
const server = spawn(process.execPath, ["/app/bin/churnops.js", "serve", "--host", "127.0.0.1", "--port", "0", "--model", model], {
  env: { ...process.env, CHURNOPS_HOME: home, CHURNOPS_API_KEYS: KEY },
  stdio: ["ignore", "pipe", "pipe"],
});
let stderr = "";
server.stderr.on("data", (chunk) => {
  stderr += chunk;
});
const exited = new Promise((resolve) => server.on("exit", (code, signal) => resolve({ code, signal })));
const timer = setTimeout(() => {
  server.kill("SIGKILL");
  fail(`timed out; server log:\n${stderr.slice(-2000)}`);
}, 90_000);

let listening = false;
exited.then(({ code }) => {
  if (!listening) fail(`server exited (${code}) before listening:\n${stderr.slice(-2000)}`);
});
const url = await new Promise((resolve) => {
  let out = "";
  server.stdout.on("data", (chunk) => {
    out += chunk;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) {
      listening = true;
      resolve(m[1]);
    }
  });
});
const listeningMs = Math.round(performance.now() - started);

const call = async (path, body) => {
  const res = await fetch(url + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
};

// The bundle being served: the directory given, or the one the server downloaded into its cache.
const found = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? found(join(dir, e.name)) : e.name === "bundle.json" ? [join(dir, e.name)] : []));
const bundleFiles = existsSync(join(model, "bundle.json")) ? [join(model, "bundle.json")] : found(home);
if (bundleFiles.length !== 1) fail(`expected one bundle, found ${bundleFiles.length}`);
const bundle = JSON.parse(readFileSync(bundleFiles[0], "utf8"));
const index = bundle.golden.rows.findIndex((row) => Object.values(row).every((v) => v !== null));
if (index < 0) fail("the bundle has no golden row without missing values");
const customer = { [bundle.schema.id_column]: "smoke-1", ...bundle.golden.rows[index] };
const expected = bundle.golden.probabilities[index];

const ready = await call("/readyz");
if (ready.status !== 200 || ready.json.status !== "ready") fail(`/readyz answered ${ready.status} ${JSON.stringify(ready.json)}`);
if (String(ready.json.champion.version) !== String(bundle.model_version)) fail(`/readyz serves ${JSON.stringify(ready.json.champion)}, not the bundle`);

const predicted = await call("/v1/predict", customer);
if (predicted.status !== 200) fail(`/v1/predict answered ${predicted.status} ${JSON.stringify(predicted.json)}`);
const diff = Math.abs(predicted.json.churn_probability - expected);
if (!(diff <= 1e-6)) fail(`/v1/predict gave ${predicted.json.churn_probability}, the bundle's golden row ${expected}`);

const numeric = bundle.schema.features.find((f) => f.kind === "numeric" && f.lower_bound !== null);
const bad = await call("/v1/predict", { ...customer, [numeric.name]: "not a number" });
if (bad.status !== 422) fail(`an invalid ${numeric.name} answered ${bad.status}, not 422`);

server.kill("SIGTERM");
const { code } = await exited;
clearTimeout(timer);
if (code !== 0) fail(`server exited with ${code} after SIGTERM:\n${stderr.slice(-2000)}`);
console.log(
  JSON.stringify({
    smoke: "churnops",
    uid: process.getuid(),
    node: process.version,
    listening_ms: listeningMs,
    model: ready.json.champion,
    churn_probability: predicted.json.churn_probability,
    risk_band: predicted.json.risk_band,
    golden_diff: diff,
    invalid_status: bad.status,
    total_ms: Math.round(performance.now() - started),
  }),
);
