// Cold start of the Lambda handler, measured locally: a fresh Node process imports dist/server/lambda.js, serves
// the REST API event once (config, model load + sha256 + golden-vector verification, app build, first request)
// and then warm. Run once per process, several processes; prints one JSON line per run.
//   node deploy/lambda/cold-start.mjs <bundle dir> [runs]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const [bundle, runs = "5"] = process.argv.slice(2);
if (process.env.COLD_START_CHILD === "1") {
  const t0 = performance.now();
  const { handler } = await import(join(root, "dist", "server", "lambda.js"));
  const imported = performance.now();
  const event = JSON.parse(readFileSync(join(root, "deploy", "lambda", "events", "rest-v1-predict.json"), "utf8"));
  const first = await handler(event, {});
  const cold = performance.now();
  const second = await handler(event, {});
  const warm = performance.now();
  if (first.statusCode !== 200 || second.statusCode !== 200) throw new Error(`status ${first.statusCode}/${second.statusCode}: ${first.body}`);
  console.log(
    JSON.stringify({
      import_ms: Math.round(imported - t0),
      first_invocation_ms: Math.round(cold - imported),
      cold_total_ms: Math.round(cold - t0),
      warm_invocation_ms: Math.round((warm - cold) * 100) / 100,
    }),
  );
  process.exit(0);
}
if (!bundle) throw new Error("usage: node deploy/lambda/cold-start.mjs <bundle dir> [runs]");
const home = mkdtempSync(join(tmpdir(), "churnops-lambda-"));
const config = join(home, "churnops.toml");
writeFileSync(config, `[server]\nmodel = ${JSON.stringify(resolve(bundle))}\naccess_log = false\n[server.rate_limit]\nmax = 0\n`);
for (let i = 0; i < Number(runs); i++) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, COLD_START_CHILD: "1", CHURNOPS_CONFIG: config, CHURNOPS_HOME: home, CHURNOPS_API_KEYS: "lambda-key-0123456789abcdef", CHURNOPS_LOG_LEVEL: "warn" },
    encoding: "utf8",
  });
  process.stdout.write(out);
}
