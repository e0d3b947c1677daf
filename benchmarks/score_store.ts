/**
 * The store at scale (issue 21): synthetic customers in Parquet with their ids shuffled (a real table is rarely
 * sorted by id), scored by the whole `churnops score` command three ways in one invocation, one after another:
 * to a file only (`--no-store --out`), into SQLite, into PostgreSQL. Each store starts empty. Then the size of
 * a stored score, measured from the database itself: SQLite's dbstat (pages of the scores table and its indexes),
 * PostgreSQL's pg_total_relation_size (heap, TOAST and indexes). Prints one JSON object.
 * CHURNOPS_BENCH_BASELINE_CLI names another build's launcher (e.g. main's) measured the same way just before.
 * Usage: node --import tsx benchmarks/score_store.ts [rows,rows,…] (default 1000000); CHURNOPS_BENCH_PG names the
 * PostgreSQL database (default postgresql://root@127.0.0.1:5432/test; a schema of its own is made and dropped).
 */
import { existsSync, rmSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { BASELINE_CLI, CLI, commandBench } from "./command_bench.js";

const PG_URL = process.env.CHURNOPS_BENCH_PG ?? "postgresql://root@127.0.0.1:5432/test";
const sizes = (process.argv[2] ?? "1000000").split(",").map(Number);
const bench = commandBench("store");
const { work: WORK, trainer } = bench;
/** One `churnops` command of a build (its launcher `cli`) under GNU time. */
const timed = (cli: string, args: string[], extra: NodeJS.ProcessEnv = {}) => bench.timed(process.execPath, [cli, ...args], extra);

async function shuffled(rows: number): Promise<string> {
  const out = join(WORK, `customers-${rows}-shuffled.parquet`);
  if (existsSync(out)) return out;
  const sorted = join(WORK, `customers-${rows}.parquet`);
  if (!existsSync(sorted)) trainer(["synth", "--rows", String(rows), "--seed", "2", "--out", sorted]);
  const duck = await DuckDBInstance.create(":memory:");
  const conn = await duck.connect();
  await conn.run(`COPY (SELECT * FROM read_parquet('${sorted}') ORDER BY hash(customer_id)) TO '${out}' (FORMAT parquet)`);
  conn.closeSync();
  duck.closeSync();
  rmSync(sorted, { force: true });
  return out;
}

/** SQLite: bytes of the scores' table and its indexes (dbstat), per stored score. */
function sqliteBytes(path: string): { bytes: number; rows: number; by_object: Record<string, number> } {
  const db = new SqliteDatabase(path, { readonly: true });
  try {
    const objects = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE (type = 'table' AND name IN ('score_rows', 'scores')) OR (type = 'index' AND tbl_name IN ('score_rows', 'scores'))",
      )
      .pluck()
      .all() as string[];
    const by_object: Record<string, number> = {};
    for (const name of objects) by_object[name] = Number(db.prepare("SELECT sum(pgsize) FROM dbstat WHERE name = ?").pluck().get(name) ?? 0);
    const rows = Number(db.prepare("SELECT count(*) FROM scores").pluck().get());
    return { bytes: Object.values(by_object).reduce((a, b) => a + b, 0), rows, by_object };
  } finally {
    db.close();
  }
}

async function postgresBytes(client: pg.Client, schema: string): Promise<{ bytes: number; rows: number; by_object: Record<string, number> }> {
  const table = (await client.query(`SELECT to_regclass('${schema}.score_rows') AS t`)).rows[0]?.t === null ? "scores" : "score_rows";
  const parts = await client.query<{ name: string; bytes: string }>(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2
     UNION ALL SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2`,
    [schema, table],
  );
  const total = Number(parts.rows[0]?.bytes ?? 0);
  const by_object: Record<string, number> = {};
  for (const r of parts.rows.slice(1)) by_object[r.name] = Number(r.bytes);
  by_object[`${table} (heap + toast)`] = total - Object.values(by_object).reduce((a, b) => a + b, 0);
  const rows = Number((await client.query(`SELECT count(*) AS n FROM ${schema}.scores`)).rows[0]?.n ?? 0);
  return { bytes: total, rows, by_object };
}

const bundleDir = bench.championBundle();

/** The three commands with one build, each store empty at the start. */
async function measure(cli: string, rows: number, data: string) {
  const common = ["score", "--data", data, "--model", bundleDir, "--as-of", "2026-01-01", "--json"];
  const load_before = loadavg().map((l) => Number(l.toFixed(2)));
  const out = join(WORK, `scores-${rows}.parquet`);
  const fileOnly = timed(cli, [...common, "--no-store", "--out", out]);
  rmSync(out, { force: true });

  const db = join(WORK, `store-${rows}.db`);
  for (const s of ["", "-wal", "-shm"]) rmSync(`${db}${s}`, { force: true });
  const sqlite = timed(cli, common, { CHURNOPS_DB_URL: `sqlite://${db}` });
  // The WAL folded into the database first, so the pages counted are the database's own.
  const wal = new SqliteDatabase(db);
  wal.pragma("wal_checkpoint(TRUNCATE)");
  wal.close();
  const sqliteSize = sqliteBytes(db);
  for (const s of ["", "-wal", "-shm"]) rmSync(`${db}${s}`, { force: true });

  const schema = `bench_store_${process.pid}_${rows}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  let postgres: ReturnType<typeof timed>;
  let pgSize: Awaited<ReturnType<typeof postgresBytes>>;
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.query(`CREATE SCHEMA ${schema}`);
    postgres = timed(cli, common, { CHURNOPS_DB_URL: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` });
    const table = (await client.query(`SELECT to_regclass('${schema}.score_rows') AS t`)).rows[0]?.t === null ? "scores" : "score_rows";
    await client.query(`VACUUM ANALYZE ${schema}.${table}`);
    pgSize = await postgresBytes(client, schema);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
  const ratio = (m: { seconds: number }) => Number((m.seconds / fileOnly.seconds).toFixed(2));
  const per = (s: { bytes: number; rows: number }) => Number((s.bytes / s.rows).toFixed(1));
  return {
    cli,
    load_before,
    file_only: { seconds: fileOnly.seconds, peak_rss_mb: fileOnly.peak_rss_mb },
    sqlite: { seconds: sqlite.seconds, peak_rss_mb: sqlite.peak_rss_mb, vs_file_only: ratio(sqlite), bytes_per_score: per(sqliteSize), ...sqliteSize },
    postgres: { seconds: postgres.seconds, peak_rss_mb: postgres.peak_rss_mb, vs_file_only: ratio(postgres), bytes_per_score: per(pgSize), ...pgSize },
    load_after: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

const results = [];
for (const rows of sizes) {
  const data = await shuffled(rows);
  const baseline = BASELINE_CLI === undefined ? null : await measure(BASELINE_CLI, rows, data);
  results.push({ rows, ids: "shuffled", this_build: await measure(CLI, rows, data), baseline });
}
console.log(
  JSON.stringify(
    {
      benchmark: "score_store",
      machine: { cpus: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30) },
      goals: { sqlite_vs_file_only: 1.3, postgres_vs_file_only: 1.5, bytes_per_score: 60 },
      results,
    },
    null,
    2,
  ),
);
