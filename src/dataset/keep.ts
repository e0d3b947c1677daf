import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { SourceSpec } from "../data/source.js";
import { quoteLiteral } from "../data/sql-quote.js";
import { forgetSnapshot, getSnapshot, keepSnapshotRecord } from "../store/datasets.js";
import type { Store } from "../store/db.js";

export type KeepResult = { kept: true; path: string; rows: number; already: boolean } | { kept: false; reason: string };

/**
 * Keep a copy of the day's snapshot (Parquet, under <home>/snapshots/) and record it, so that a training set can
 * be built from exactly what was scored that day even after the original file is moved or overwritten by the next
 * export. A date already kept keeps its first copy. A database snapshot is not copied: DuckDB here reads files only.
 */
export async function keepSnapshot(
  store: Store,
  home: string,
  day: { date: string; runId: string; source: SourceSpec; description: string },
): Promise<KeepResult> {
  const existing = await getSnapshot(store, day.date);
  if (existing !== undefined && existsSync(existing.path)) return { kept: true, path: existing.path, rows: existing.rows, already: true };
  const data = day.source.data;
  if (data.startsWith("postgres") || data.startsWith("sqlite:"))
    return { kept: false, reason: "a database snapshot is not copied; training sets are built from file snapshots" };
  const path = resolve(data);
  const relation = /\.(parquet|pq)$/i.test(path) ? `read_parquet(${quoteLiteral(path)})` : `read_csv(${quoteLiteral(path)}, header = true)`;
  const dir = join(home, "snapshots");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${day.date}.parquet`);
  const tmp = `${out}.tmp-${process.pid}`;
  const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await instance.connect();
  try {
    await conn.run(`COPY (SELECT * FROM ${relation}) TO ${quoteLiteral(tmp)} (FORMAT parquet)`);
    renameSync(tmp, out);
    const rows = Number((await conn.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${quoteLiteral(out)})`)).getRowObjects()[0]?.n ?? 0);
    const columns = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(out)})`)).getRowObjects().map((r) => String(r.column_name));
    if (existing !== undefined) await forgetSnapshot(store, day.date);
    await keepSnapshotRecord(store, {
      date: day.date,
      run_id: day.runId,
      source: day.description,
      path: out,
      rows,
      columns: JSON.stringify(columns),
      kept_at: new Date().toISOString(),
    });
    return { kept: true, path: out, rows, already: false };
  } finally {
    rmSync(tmp, { force: true });
    conn.closeSync();
    instance.closeSync();
  }
}
