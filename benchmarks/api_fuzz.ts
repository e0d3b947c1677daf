/**
 * Robustness: schemathesis against our own /openapi.json, with an API key, all checks (5xx, response schema,
 * status codes, content types, undeclared methods, negative data rejected …). schemathesis is installed into a
 * temporary venv at run time. Then the inputs a schema-driven generator does not reach: values nested thousands of
 * lists deep and NUL bytes (in the id, in a category, in a key), in single and batch bodies. Prints JSON; exits
 * non-zero when schemathesis found a failure or any hostile request got a 5xx.
 * Usage: node --import tsx benchmarks/api_fuzz.ts [--max-examples 100]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY, log, startOurs, trainBundle } from "./api_common.js";

const args = process.argv.slice(2);
const i = args.indexOf("--max-examples");
const MAX_EXAMPLES = i >= 0 ? Number(args[i + 1]) : 100;
const SCHEMATHESIS = "schemathesis==4.32.5";

function schemathesis(): string {
  const venv = join(tmpdir(), "churnops-bench-schemathesis-v4");
  const st = join(venv, "bin", "schemathesis");
  if (!existsSync(join(venv, ".ready"))) {
    log(`creating ${venv} (pip install ${SCHEMATHESIS})`);
    execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
    execFileSync(join(venv, "bin", "python"), ["-m", "pip", "install", "-q", SCHEMATHESIS], { stdio: ["ignore", "ignore", "inherit"] });
    writeFileSync(join(venv, ".ready"), "");
  }
  return st;
}

/** Bodies schemathesis does not generate: deep nesting and NUL bytes; every answer must be a 4xx (or a 200). */
async function hostileRequests(url: string): Promise<{ sent: number; statuses: Record<string, number>; server_errors: number }> {
  const doc = (await (await fetch(`${url}/openapi.json`)).json()) as {
    paths: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: { example?: Record<string, unknown> } }> } } }>;
  };
  const example = doc.paths["/v1/predict"]?.post?.requestBody?.content?.["application/json"]?.schema?.example ?? {};
  const fields = Object.keys(example);
  const nested = (depth: number): string => `${"[".repeat(depth)}1${"]".repeat(depth)}`;
  const bodies: string[] = [];
  for (const depth of [1_000, 5_000, 20_000]) {
    for (const field of fields) bodies.push(JSON.stringify(example).replace(`"${field}":${JSON.stringify(example[field])}`, `"${field}":${nested(depth)}`));
    bodies.push(nested(depth));
  }
  for (const field of fields) bodies.push(JSON.stringify({ ...example, [field]: "a\u0000b" }));
  bodies.push(JSON.stringify({ ...example, "\u0000": 1 }));
  const statuses: Record<string, number> = {};
  let serverErrors = 0;
  for (const body of bodies) {
    for (const [path, payload] of [
      ["/v1/predict", body],
      ["/v1/predict/batch", `{"customers":[${body}]}`],
    ] as const) {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
        body: payload,
      });
      await res.body?.cancel();
      statuses[String(res.status)] = (statuses[String(res.status)] ?? 0) + 1;
      if (res.status >= 500) serverErrors++;
    }
  }
  return { sent: bodies.length * 2, statuses, server_errors: serverErrors };
}

async function main(): Promise<number> {
  const st = schemathesis();
  const work = mkdtempSync(join(tmpdir(), "churnops-bench-fuzz-"));
  try {
    const bundle = trainBundle(work);
    // Access log off: schemathesis sends thousands of requests and the log is not what is tested here.
    const server = await startOurs(work, bundle, "[server]\naccess_log = false\n");
    try {
      const report = join(work, "schemathesis.json");
      // The API answers an over-long batch with 413 (as specified), which schemathesis's default list of
      // rejections lacks; everything else keeps the defaults.
      const config = join(work, "schemathesis.toml");
      writeFileSync(config, "[checks.negative_data_rejection]\nexpected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]\n");
      log(`schemathesis against ${server.url}/openapi.json`);
      const started = Date.now();
      const run = spawnSync(
        st,
        [
          "--config-file",
          config,
          "run",
          `${server.url}/openapi.json`,
          "--header",
          `Authorization: Bearer ${API_KEY}`,
          "--checks",
          "all",
          "--max-examples",
          String(MAX_EXAMPLES),
          "--generation-deterministic",
          "--report",
          "ndjson",
          "--report-ndjson-path",
          report,
        ],
        { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, cwd: work },
      );
      const text = `${run.stdout}${run.stderr}`;
      process.stderr.write(text);
      const summary = /={5,} (.+) in ([\d.]+)s =+/.exec(text)?.[1] ?? "no summary";
      const cases = /Test cases:\s*\n\s*(.+)/.exec(text)?.[1] ?? "";
      const failures = [...text.matchAll(/❌ (ST\d+ [^:\n]+): (\d+)/g)].map((m) => ({ check: m[1], count: Number(m[2]) }));
      const hostile = await hostileRequests(server.url);
      const result = {
        benchmark: "api_fuzz",
        hostile,
        tool: SCHEMATHESIS,
        max_examples: MAX_EXAMPLES,
        exit_code: run.status,
        summary,
        test_cases: cases,
        failures,
        seconds: Math.round((Date.now() - started) / 100) / 10,
        server_errors_logged: (readFileSync(join(work, "ours", "server.log"), "utf8").match(/"level":50/g) ?? []).length,
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return run.status === 0 && hostile.server_errors === 0 ? 0 : 1;
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
