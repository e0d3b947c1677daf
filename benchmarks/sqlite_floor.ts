/**
 * The SQLite store's own write speed for batch scores: the store's schema (migrations), the writer's transaction
 * per chunk (writeChunk: claim renewed, 64-row INSERTs, checkpoint), nothing else running — no reading,
 * validating or scoring. Only the writes are timed. This is the ceiling for `churnops score` into SQLite on this
 * machine. Prints one JSON object.
 * Usage: node --import tsx benchmarks/sqlite_floor.ts [rows] [model version] [ascending|shuffled] [store URL]
 * `shuffled` writes the same ids in a fixed random order, as a customer table not sorted by id arrives. A store
 * URL (default: a new SQLite file) measures another store, e.g. an empty PostgreSQL schema: the rows stay there.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/store/db.js";
import { type ScoreColumns, startOrResumeRun, writeChunk } from "../src/store/runs.js";

const rows = Number(process.argv[2] ?? 10_000_000);
// Registered versions are short ("3"); a --no-register bundle's version is "run-<32 hex>", about 60 bytes more a row.
const version = process.argv[3] ?? "1";
const idOrder = process.argv[4] ?? "ascending";
if (idOrder !== "ascending" && idOrder !== "shuffled") throw new Error(`id order ${idOrder}: expected ascending or shuffled`);
/** Row i's customer number: i itself, or a fixed permutation (Fisher–Yates over a small LCG, seed 7). */
const customerAt = new Uint32Array(rows);
for (let i = 0; i < rows; i++) customerAt[i] = i;
if (idOrder === "shuffled") {
  let seed = 7;
  for (let i = rows - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const j = seed % (i + 1);
    const t = customerAt[i] as number;
    customerAt[i] = customerAt[j] as number;
    customerAt[j] = t;
  }
}
const CHUNK = 65_536;
const dir = mkdtempSync(join(tmpdir(), "churnops-sqlite-floor-"));
const storeUrl = process.argv[5] ?? `sqlite://${join(dir, "store.db")}`;
const store = await openStore(storeUrl);
try {
  const run = await startOrResumeRun(store, { kind: "daily", asOf: "2026-01-01", modelName: "churn", modelVersion: version, source: "sqlite_floor" });
  const bands = ["high", "medium", "low"];
  let writing = 0;
  for (let start = 0; start < rows; start += CHUNK) {
    const n = Math.min(CHUNK, rows - start);
    const scores: ScoreColumns = {
      runId: run.run_id,
      modelName: "churn",
      modelVersion: version,
      scoredAt: new Date().toISOString(),
      customerIds: Array.from({ length: n }, (_, i) => `C${String(customerAt[start + i]).padStart(9, "0")}`),
      probabilities: Float64Array.from({ length: n }, (_, i) => ((start + i) % 1000) / 1000),
      bands: Array.from({ length: n }, (_, i) => bands[(start + i) % 3] as string),
      decisions: Uint8Array.from({ length: n }, (_, i) => (start + i) % 2),
    };
    const t0 = performance.now();
    await writeChunk(store, run.run_id, { scores, quarantine: [], checkpointRows: start + n });
    writing += performance.now() - t0;
  }
  const seconds = writing / 1000;
  console.log(
    JSON.stringify(
      {
        benchmark: "sqlite_floor",
        rows,
        model_version: version,
        id_order: idOrder,
        store: store.dialect,
        chunk_rows: CHUNK,
        seconds: Number(seconds.toFixed(2)),
        rows_per_s: Math.round(rows / seconds),
      },
      null,
      2,
    ),
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
