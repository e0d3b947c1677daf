import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Store } from "../../src/store/db.js";
import type { Database, ScoreRunsTable } from "../../src/store/schema.js";

/** The real PostgreSQL on this machine (trust auth); override with CHURNOPS_TEST_PG. */
export const PG_URL = process.env.CHURNOPS_TEST_PG ?? "postgresql://root@127.0.0.1:5432/test";

export interface StoreTarget {
  name: "sqlite" | "postgres";
  /** A fresh, empty store URL for one test. */
  fresh(): Promise<string>;
}

/**
 * Every store test runs against both dialects. Each PostgreSQL store lives in its own schema (via
 * search_path), so parallel test files never see each other's rows.
 */
export const storeTargets: StoreTarget[] = [
  { name: "sqlite", fresh: async () => `sqlite://${join(mkdtempSync(join(tmpdir(), "churnops-store-")), "store.db")}` },
  {
    name: "postgres",
    fresh: async () => {
      const schema = `t_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.end();
      return `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
  },
];

/** Rows in a store table (every test that checks "nothing duplicated" asks this). */
export async function countRows(store: Store, table: keyof Database): Promise<number> {
  const row = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A complete score run's record, as a finished `score` leaves it, for tests that seed a store directly. */
export function completeRun(run: {
  runId: string;
  kind: "daily" | "monthly";
  asOf: string;
  rows: number;
  source?: string;
  input?: string | null;
}): ScoreRunsTable {
  return {
    run_id: run.runId,
    kind: run.kind,
    as_of: run.asOf,
    model_name: "churn",
    model_version: "1",
    source: run.source ?? "customers.parquet",
    status: "complete",
    started_at: `${run.asOf}T00:00:00.000Z`,
    finished_at: `${run.asOf}T00:01:00.000Z`,
    rows_read: run.rows,
    rows_scored: run.rows,
    rows_quarantined: 0,
    checkpoint_rows: run.rows,
    duration_ms: 1,
    error: null,
    lease_owner: null,
    lease_expires_at: null,
    input: run.input ?? null,
    input_fingerprint: null,
    replaces: null,
    pruned_at: null,
  };
}
