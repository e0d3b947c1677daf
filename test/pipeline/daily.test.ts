import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { SnakeKeys } from "../../src/cli/context.js";
import type { DailySummary } from "../../src/pipeline/daily.js";
import { getCampaign } from "../../src/store/campaigns.js";
import { acquireLock, finishDailyRun, getDailyRun, startDailyRun } from "../../src/store/daily.js";
import { openStore, type Store } from "../../src/store/db.js";
import { runCli, startCli } from "../helpers/cli.js";
import { countRows, storeTargets } from "../helpers/stores.js";

const fixture = inject("fixture");

function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

describe.each(storeTargets)("daily job on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  async function setup() {
    const url = await target.fresh();
    const home = mkdtempSync(join(tmpdir(), "churnops-daily-"));
    const config = join(home, "churnops.toml");
    writeFileSync(
      config,
      [
        "[daily]",
        "monthly_day = 1",
        "review_top = 25",
        `data = ${JSON.stringify(fixture.dataPath)}`,
        "[[daily.campaigns]]",
        'name = "winback"',
        'min_band = "medium"',
        "budget = 150",
        'value_column = "customer_value"',
        "offer_cost = 20",
        "offer_success = 0.3",
        "[campaigns.delivery]",
        'adapter = "export"',
        `export_dir = ${JSON.stringify(join(home, "exports"))}`,
        "",
      ].join("\n"),
    );
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home };
    const daily = (date: string) => runCli(["--config", config, "daily", "--date", date, "--model", fixture.bundleDir, "--json"], env);
    store = await openStore(url);
    return { url, home, config, env, daily };
  }

  const count = (table: "scores" | "campaign_members" | "campaign_messages" | "campaigns") => countRows(store as Store, table);

  function exportedKeys(home: string, campaign: string): string[] {
    return readFileSync(join(home, "exports", `${campaign}.jsonl`), "utf8")
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { idempotency_key: string }).idempotency_key);
  }

  it("scores, refreshes opt-outs, plans and sends; a re-run of the same date duplicates nothing", async () => {
    const { home, daily, config, env } = await setup();
    const first = await daily("2026-11-02");
    expect(first.code, first.stderr).toBe(0);
    const s = JSON.parse(first.stdout) as SnakeKeys<DailySummary>;
    expect(s).toMatchObject({ date: "2026-11-02", kind: "daily", attempt: 1 });
    expect(s.score).toMatchObject({ run_id: `daily-2026-11-02-churn-v${fixture.version}`, status: "complete" });
    expect(s.score.rows_scored + s.score.rows_quarantined).toBe(4000);
    expect(s.opt_outs?.opted_out).toBeGreaterThan(100);
    const [c] = s.campaigns;
    expect(c?.name).toBe("winback-2026-11-02");
    expect(c?.plan).toMatchObject({ status: "planned", treated: 150 });
    expect(c?.send.delivered).toBe(150);
    expect(s.review).toBeNull();
    // The monitoring half ran on today's batch: drift against the bundle's reference, no retrain without alerts.
    expect(s.watch?.drift, JSON.stringify(s.watch)).toMatchObject({ severity: expect.stringMatching(/^(ok|warn|alert)$/) });
    expect(s.watch?.retrain).toMatchObject({ ran: false });
    const campaign = await getCampaign(store as Store, "winback-2026-11-02");
    expect(campaign?.ranking).toBe("expected_value");
    expect(JSON.parse(campaign?.counts ?? "{}").excluded.opted_out).toBeGreaterThan(0);
    const before = { scores: await count("scores"), members: await count("campaign_members"), messages: await count("campaign_messages") };

    const second = await daily("2026-11-02");
    expect(second.code, second.stderr).toBe(0);
    const again = JSON.parse(second.stdout) as SnakeKeys<DailySummary>;
    expect(again.attempt).toBe(2);
    expect(again.score.status).toBe("already_complete");
    expect(again.campaigns[0]?.plan.status).toBe("already_planned");
    expect(again.campaigns[0]?.send.delivered).toBe(0);
    expect({ scores: await count("scores"), members: await count("campaign_members"), messages: await count("campaign_messages") }).toEqual(before);
    const keys = exportedKeys(home, "winback-2026-11-02");
    expect(keys).toHaveLength(150);
    expect(new Set(keys).size).toBe(150);
    expect((await getDailyRun(store as Store, "2026-11-02"))?.status).toBe("complete");

    // What the store kept can be read back: the list of jobs, and one day's summary as the job printed it.
    const history = await runCli(["--config", config, "daily-runs", "--json"], env);
    expect(history.code, history.stderr).toBe(0);
    expect(JSON.parse(history.stdout)).toEqual([expect.objectContaining({ date: "2026-11-02", kind: "daily", status: "complete", attempts: 2 })]);
    const stored = await runCli(["--config", config, "daily-summary", "latest", "--json"], env);
    expect(stored.code, stored.stderr).toBe(0);
    expect(JSON.parse(stored.stdout)).toMatchObject({ date: "2026-11-02", status: "complete", summary: again });
    const shown = await runCli(["--config", config, "daily-summary", "2026-11-02"], env);
    expect(shown.stdout).toContain("Daily job 2026-11-02 (daily run, attempt 2)");
    const failedAt = new Date();
    await startDailyRun(store as Store, "2026-11-06", "daily", failedAt);
    await finishDailyRun(store as Store, "2026-11-06", { status: "failed", summary: null, error: "snapshot missing" }, failedAt);
    const failed = await runCli(["--config", config, "daily-summary", "2026-11-06"], env);
    expect(failed.stdout).toContain("Daily job 2026-11-06: failed: snapshot missing");
    const none = await runCli(["--config", config, "daily-summary", "2026-11-09"], env);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("no daily job ran for 2026-11-09");
  });

  it("runs monthly on the configured day with a risk review against last month, honouring the cooldown", async () => {
    const { daily } = await setup();
    expect((await daily("2026-11-20")).code).toBe(0);
    const dec = await daily("2026-12-01");
    expect(dec.code, dec.stderr).toBe(0);
    const december = JSON.parse(dec.stdout) as SnakeKeys<DailySummary>;
    expect(december.kind).toBe("monthly");
    expect(december.score.run_id).toBe(`monthly-2026-12-01-churn-v${fixture.version}`);
    expect(december.review?.previous_run_id).toBeNull();
    expect(december.review?.histogram.reduce((a, b) => a + b.customers, 0)).toBe(december.score.rows_scored);
    // November 20th's treated customers are 11 days into a 30-day cooldown.
    const plan = JSON.parse((await getCampaign(store as Store, "winback-2026-12-01"))?.counts ?? "{}");
    expect(plan.excluded.cooldown).toBe(150);

    const jan = JSON.parse((await daily("2027-01-01")).stdout) as SnakeKeys<DailySummary>;
    expect(jan.review?.previous_run_id).toBe(`monthly-2026-12-01-churn-v${fixture.version}`);
    for (const band of Object.values(jan.review?.bands ?? {})) expect(band.change).toBe(0);
    const csv = readFileSync(jan.review?.top_risk_csv as string, "utf8")
      .trim()
      .split("\n");
    expect(csv[0]).toBe("rank,customer_id,probability,band,model_version,run_id");
    expect(csv).toHaveLength(26);
    const probabilities = csv.slice(1).map((l) => Number(l.split(",")[2]));
    expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a));
    expect(existsSync(jan.review?.json as string)).toBe(true);
  });

  it("applies [retention] after the day's work: an old run's scores go, today's and the runs still needed stay", async () => {
    const url = await target.fresh();
    const home = mkdtempSync(join(tmpdir(), "churnops-daily-retention-"));
    const config = join(home, "churnops.toml");
    // No alert names the January run (an alert of the last 30 days would keep it; see test/store/retention.test.ts).
    writeFileSync(config, ["[daily]", `data = ${JSON.stringify(fixture.dataPath)}`, "[retention]", "daily_days = 30", "alert_open_days = 0", ""].join("\n"));
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home };
    const daily = (date: string) => runCli(["--config", config, "daily", "--date", date, "--model", fixture.bundleDir, "--json"], env);
    store = await openStore(url);
    const first = JSON.parse((await daily("2026-01-05")).stdout) as SnakeKeys<DailySummary>;
    expect(first.retention).toEqual({ runs: 0, scores: 0, quarantined: 0, predictions: 0, kept: 0 });
    const later = await daily("2026-06-10");
    expect(later.code, later.stderr).toBe(0);
    const june = JSON.parse(later.stdout) as SnakeKeys<DailySummary>;
    expect(june.retention).toEqual({ runs: 1, scores: first.score.rows_scored, quarantined: first.score.rows_quarantined, predictions: 0, kept: 0 });
    expect(await count("scores")).toBe(june.score.rows_scored);
    const old = await store.db.selectFrom("score_runs").select(["pruned_at", "rows_scored"]).where("run_id", "=", first.score.run_id).executeTakeFirstOrThrow();
    expect(old.pruned_at).not.toBeNull();
    expect(old.rows_scored).toBe(first.score.rows_scored);
  });

  it("refuses to run a date whose lock a live job holds, and takes over one left by a dead job", async () => {
    const { daily } = await setup();
    const now = new Date();
    const later = new Date(now.getTime() + 600_000);
    // This test process is alive: its lock must be respected.
    expect(await acquireLock(store as Store, "daily:2026-11-03", `${hostname()}/${process.pid}/test`, now, later, () => false)).toEqual({ acquired: true });
    const refused = await daily("2026-11-03");
    expect(refused.code).toBe(75);
    expect(refused.stderr).toMatch(/the daily job for 2026-11-03 is already running/);
    expect(await getDailyRun(store as Store, "2026-11-03")).toBeUndefined();

    expect(await acquireLock(store as Store, "daily:2026-11-04", `${hostname()}/${deadPid()}/gone`, now, later, () => false)).toEqual({ acquired: true });
    const taken = await daily("2026-11-04");
    expect(taken.code, taken.stderr).toBe(0);
    const lockRows = await (store as Store).db.selectFrom("job_locks").selectAll().execute();
    expect(lockRows.map((r) => r.name)).toEqual(["daily:2026-11-03"]);
  });

  it("completes a job killed at a random moment on the next run, with nothing sent twice", async () => {
    const { config, env, home, daily } = await setup();
    const date = "2026-11-05";
    let kills = 0;
    // Kill at random moments defined by progress, not by the clock (the whole job can take about a second on an
    // idle machine and much longer on a busy one): once scoring has written, once the campaign is planned, once
    // its messages exist; each after a random few milliseconds more.
    const stages: (() => Promise<boolean>)[] = [
      async () => (await count("scores")) > 0,
      async () => (await count("campaign_members")) > 0,
      async () => (await count("campaign_messages")) > 0,
    ];
    for (const reached of stages) {
      const { child, done } = startCli(["--config", config, "daily", "--date", date, "--model", fixture.bundleDir, "--json"], env);
      let exited = false;
      const finished = done.then((r) => {
        exited = true;
        return r;
      });
      while (!exited && !(await reached().catch(() => false))) await new Promise((r) => setTimeout(r, 2));
      if (!exited) {
        await new Promise((r) => setTimeout(r, Math.random() * 20));
        child.kill("SIGKILL");
      }
      if ((await finished).signal === "SIGKILL") kills++;
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    const final = await daily(date);
    expect(final.code, final.stderr).toBe(0);
    const s = JSON.parse(final.stdout) as SnakeKeys<DailySummary>;
    expect(s.campaigns[0]?.send.states).toEqual({ pending: 0, sending: 0, delivered: 150, dead: 0 });
    expect(await count("campaigns")).toBe(1);
    expect(await count("campaign_messages")).toBe(150);
    expect(await count("scores")).toBe(s.score.rows_scored);
    const keys = exportedKeys(home, `winback-${date}`);
    expect(new Set(keys).size).toBe(150);
    expect(keys).toHaveLength(150);
    expect((await getDailyRun(store as Store, date))?.status).toBe("complete");
  });
});
