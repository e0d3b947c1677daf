import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { SnakeKeys } from "../../src/cli/context.js";
import type { BuildSummary } from "../../src/dataset/build.js";
import type { DailySummary } from "../../src/pipeline/daily.js";
import type { RetrainDecision } from "../../src/store/datasets.js";
import { openStore, type Store } from "../../src/store/db.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { runCli } from "../helpers/cli.js";
import { storeTargets } from "../helpers/stores.js";
import { copyHome } from "../monitoring/helpers.js";

const fixture = inject("fixture");

async function firstIds(path: string, n: number): Promise<{ id: string; churned: number }[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    const rows = (await conn.runAndReadAll(`SELECT customer_id, churned FROM read_parquet('${path}') ORDER BY customer_id LIMIT ${n}`)).getRowObjectsJS();
    return rows.map((r) => ({ id: String(r.customer_id), churned: Number(r.churned) }));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe.each(storeTargets)("the retrain cycle of the daily job on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it("keeps each day's snapshot, records 'not enough labels yet' instead of training, and builds sets after the file is gone", async () => {
    const url = await target.fresh();
    const home = copyHome(fixture);
    const dir = mkdtempSync(join(tmpdir(), "churnops-cycle-"));
    const config = join(dir, "churnops.toml");
    writeFileSync(
      config,
      [
        "[daily]",
        `data = ${JSON.stringify(join(dir, "snapshot-{date}.parquet"))}`,
        "[monitoring.retrain]",
        "every_days = 30",
        "horizon_days = 30",
        "window_days = 60",
        "",
      ].join("\n"),
    );
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "" };
    const cli = (args: string[]) => runCli(["--config", config, ...args], env);
    copyFileSync(fixture.dataPath, join(dir, "snapshot-2026-01-01.parquet"));
    copyFileSync(fixture.dataPath, join(dir, "snapshot-2026-01-31.parquet"));

    const jan = await cli(["daily", "--date", "2026-01-01", "--json"]);
    expect(jan.code, jan.stderr).toBe(0);
    const s1 = JSON.parse(jan.stdout) as SnakeKeys<DailySummary>;
    expect(s1.snapshot).toMatchObject({ kept: true, path: join(home, "snapshots", "2026-01-01.parquet"), rows: 4000 });
    // Due on the first day (never judged), but there is nothing to learn from yet: recorded, nothing trained.
    expect(s1.watch?.retrain).toMatchObject({ ran: false });
    expect(JSON.stringify(s1.watch?.retrain)).toMatch(/schedule:30d calls for retraining, but not enough labels yet/);

    store = await openStore(url);
    // A handful of outcomes: labels for 40 customers, far fewer churners than the gate's holdout needs.
    const some = await firstIds(fixture.dataPath, 40);
    await upsertOutcomes(
      store,
      some.map((r) => ({ customer_id: r.id, observed_at: "2026-01-31", churned: r.churned, source: "test", ingested_at: "2026-01-31T00:00:00Z" })),
    );
    const feb = await cli(["daily", "--date", "2026-01-31", "--json"]);
    expect(feb.code, feb.stderr).toBe(0);
    const history = await cli(["retrain", "--history", "--json"]);
    expect(history.code, history.stderr).toBe(0);
    const decisions = JSON.parse(history.stdout) as RetrainDecision[];
    expect(decisions.map((d) => [d.date, d.outcome, d.trigger])).toEqual([
      ["2026-01-31", "not_enough_labels", "schedule:30d"],
      ["2026-01-01", "not_enough_labels", "schedule:30d"],
    ]);
    const churners = some.filter((r) => r.churned === 1).length;
    expect(decisions[0]).toMatchObject({ dataset_rows: 40, dataset_positives: churners });
    expect(decisions[0]?.reason).toMatch(new RegExp(`${churners} churners labelled in 40 rows .*the gate needs 50`));
    expect(decisions[1]?.reason).toMatch(/no snapshot to build a training set from/);
    const human = await cli(["retrain", "--history"]);
    expect(human.stdout).toMatch(/2026-01-31 {2}not_enough_labels {2}schedule:30d \[set [0-9a-f]{12}: 40 rows/);

    // The original file moves away: the kept copy still holds what was scored that day.
    rmSync(join(dir, "snapshot-2026-01-01.parquet"));
    const built = await cli(["dataset", "build", "--horizon", "30d", "--as-of", "2026-01-31", "--json"]);
    expect(built.code, built.stderr).toBe(0);
    const b = JSON.parse(built.stdout) as BuildSummary;
    expect(b).toMatchObject({ rows: 40, positives: churners, fingerprint: decisions[0]?.dataset_fingerprint });
    expect(b.snapshots[0]).toMatchObject({ date: "2026-01-01", origin: "kept", rows: 4000 });
    expect(existsSync(b.out)).toBe(true);
    // 2026-01-31's own horizon has not ended: its rows are censored, and said so, except the customers whose churn was
    // observed that very day (they had left by the snapshot).
    expect(b.left_out).toMatchObject({ censored: 4000 - churners, already_churned: churners });
  }, 240_000);
});

describe("dataset build on the command line", () => {
  it("refuses a bad horizon and an empty window with one line naming what is wrong", async () => {
    const url = await storeTargets[0]?.fresh();
    const env = { CHURNOPS_DB_URL: url as string, CHURNOPS_HOME: mkdtempSync(join(tmpdir(), "churnops-cycle-")) };
    const bad = await runCli(["dataset", "build", "--horizon", "a month"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('churnops: --horizon "a month": expected a number of days such as 30d (or weeks, 4w), from 1 day to 10 years');
    const empty = await runCli(["dataset", "build", "--horizon", "30d", "--from", "2026-01-01", "--to", "2026-02-01"], env);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(
      /^churnops: no snapshot to build a training set from in 2026-01-01 … 2026-02-01: no complete score run or kept snapshot is dated in it\n$/,
    );
    const backwards = await runCli(["dataset", "build", "--horizon", "30d", "--from", "2026-03-01", "--to", "2026-02-01"], env);
    expect(backwards.stderr).toMatch(/--from 2026-03-01 is after --to 2026-02-01/);
  });
});
