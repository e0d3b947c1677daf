/**
 * Where a small `score` spends its fixed cost, step by step, in one process: importing each layer of the compiled
 * CLI (dist/, unbundled, so each layer's imports are counted where they first load), reading the config, resolving
 * the alias, reading and verifying the bundle, the ONNX session, the store (open and migrations, cold and warm),
 * DuckDB opening the file, and the threads a many-chunk run starts (score writer, inference worker). The whole
 * bundled command is timed by score_commands.ts; this says where its time goes. Needs `npm run build` and a home
 * with a champion (default: the one score_commands.ts trains). Prints one JSON object.
 * Usage: node --import tsx benchmarks/startup_breakdown.ts [data.parquet]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const DIST = join(ROOT, "dist");
const HOME = process.env.CHURNOPS_HOME ?? join(ROOT, ".churnops-bench", "commands", "home");
const data = process.argv[2] ?? join(ROOT, ".churnops-bench", "commands", "customers-10.parquet");

// The steps run in a fresh child process (tsx's loader would otherwise be timed with the imports).
const child = `
const steps = [];
let last = performance.now();
const lap = (name) => { const now = performance.now(); steps.push([name, Math.round((now - last) * 10) / 10]); last = now; };
const D = ${JSON.stringify(`${DIST}/`)};
await import("commander"); lap("import commander");
const { loadConfig, batchRuntime } = await import(D + "config.js"); lap("import config (zod, smol-toml)");
await import(D + "log.js"); lap("import log (pino, pino-pretty)");
const registry = await import(D + "model/registry.js"); lap("import model registry");
const runtime = await import(D + "model/runtime.js"); lap("import model runtime (ONNX Runtime)");
const db = await import(D + "store/db.js"); lap("import store (kysely, better-sqlite3, migrations)");
const source = await import(D + "data/source.js"); lap("import data source (DuckDB)");
await import(D + "scoring/batch.js"); lap("import batch scoring (the rest)");
const config = loadConfig({}); lap("read config");
const resolved = await registry.resolveBundle(config, "champion"); lap("resolve champion (registry cache)");
const { readBundle } = await import(D + "model/bundle.js");
const files = await readBundle(resolved.bundlePath, resolved.registered); lap("read + verify bundle (digest, graph)");
const model = await runtime.ChurnModel.load(resolved.bundlePath, { ...batchRuntime(config), registered: resolved.registered }); lap("load model (again: session + golden vectors)");
const store = await db.openStore("sqlite://" + ${JSON.stringify(join(HOME, "breakdown.db"))}); lap("open a new store (all migrations)");
await store.close(); lap("close store");
const again = await db.openStore("sqlite://" + ${JSON.stringify(join(HOME, "breakdown.db"))}); lap("open a current store (fast path)");
const src = await source.openSource({ data: ${JSON.stringify(data)} }); lap("open the file (DuckDB, describe)");
await src.knownRows(); lap("row count (Parquet footer)");
const { ScoreWriter } = await import(D + "store/score-writer-client.js");
const writer = await ScoreWriter.forStore(again); lap("score writer thread (many-chunk runs only)");
await model.startWorker(); lap("inference worker thread (many-chunk runs only)");
await writer?.close(); await src.close(); await model.close(); await again.close(); lap("close");
void files;
process.stdout.write(JSON.stringify(steps));
`;

const nodeAlone = spawnSync(process.execPath, ["-e", "0"]);
const started = performance.now();
spawnSync(process.execPath, ["-e", "0"]);
const nodeMs = Math.round((performance.now() - started) * 10) / 10;
// A file of its own, in the project (so bare imports resolve from its node_modules); removed afterwards.
const scratch = mkdtempSync(join(ROOT, ".breakdown-"));
const script = join(scratch, "steps.mjs");
writeFileSync(script, child);
const res = spawnSync(process.execPath, [script], {
  cwd: ROOT,
  env: { ...process.env, CHURNOPS_HOME: HOME, CHURNOPS_LOG_LEVEL: "warn" },
  encoding: "utf8",
});
rmSync(scratch, { recursive: true, force: true });
for (const suffix of ["", "-wal", "-shm"]) rmSync(join(HOME, `breakdown.db${suffix}`), { force: true });
if (res.status !== 0 || nodeAlone.status !== 0) throw new Error(`the breakdown failed: ${res.stderr}`);
const steps = JSON.parse(res.stdout) as [string, number][];
process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: "startup_breakdown",
      data,
      load_1m: Number((loadavg()[0] ?? 0).toFixed(2)),
      node_alone_ms: nodeMs,
      steps_ms: Object.fromEntries(steps),
      note: "imports are of the unbundled dist/ (each layer counted where its dependencies first load); bin/churnops.js runs the bundle, whose imports cost less",
    },
    null,
    2,
  )}\n`,
);
