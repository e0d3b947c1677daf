import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { loadConfig, PROJECT_ROOT } from "../../src/config.js";
import { registerMonitoringMetrics } from "../../src/monitoring/metrics.js";
import { ServerMetrics } from "../../src/server/metrics.js";
import { openStore } from "../../src/store/db.js";
import { startOrResumeRun } from "../../src/store/runs.js";
import { storeTargets } from "../helpers/stores.js";

// The deployment files name metrics, tables and config keys of the code: these tests keep them in step.
const DEPLOY = join(PROJECT_ROOT, "deploy");
const alertsYaml = readFileSync(join(DEPLOY, "prometheus", "alerts.yml"), "utf8");
const dashboardText = readFileSync(join(DEPLOY, "grafana", "dashboards", "churnops.json"), "utf8");

interface Target {
  expr?: string;
  rawSql?: string;
  datasource: { uid: string };
}
const dashboard = JSON.parse(dashboardText) as { panels: { title: string; targets?: Target[] }[] };
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** Every series name a Prometheus scrape of the API can return (histograms as _bucket, _sum and _count). */
async function exportedSeries(): Promise<Set<string>> {
  const store = await openStore("sqlite::memory:");
  try {
    const metrics = new ServerMetrics();
    registerMonitoringMetrics(metrics.registry, store);
    const names = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
    }
    return names;
  } finally {
    await store.close();
  }
}

const referenced = (text: string): string[] => [...new Set(text.match(/churnops_[a-z0-9_]+/g) ?? [])].filter((n) => n !== "churnops_api");

describe("Prometheus alert rules and the Grafana dashboard", () => {
  it("name only metrics that the API's registry exports", async () => {
    const exported = await exportedSeries();
    const names = referenced(alertsYaml + dashboardText);
    expect(names.length).toBeGreaterThan(8);
    expect(names.filter((n) => !exported.has(n))).toEqual([]);
  });

  it("cover error rate, p99 latency, drift PSI and a stale daily run", () => {
    for (const metric of [
      "churnops_http_requests_total",
      "churnops_http_request_duration_seconds_bucket",
      "churnops_batch_max_feature_psi",
      "churnops_batch_last_finished_timestamp_seconds",
    ]) {
      expect(alertsYaml).toContain(metric);
    }
    const exprs = targets.map((t) => t.expr ?? "").join("\n");
    expect(exprs).toContain("churnops_predictions_total");
    expect(exprs).toContain("histogram_quantile(0.99");
  });
});

/** Grafana's $__timeFilter(expr), expanded as its PostgreSQL data source does, for a fixed range. */
function expandMacros(query: string): string {
  const macro = "$__timeFilter(";
  let out = query;
  for (let at = out.indexOf(macro); at >= 0; at = out.indexOf(macro)) {
    let depth = 1;
    let end = at + macro.length;
    for (; depth > 0; end++) depth += out[end] === "(" ? 1 : out[end] === ")" ? -1 : 0;
    const expr = out.slice(at + macro.length, end - 1);
    out = `${out.slice(0, at)}${expr} BETWEEN '2026-01-01T00:00:00Z' AND '2026-12-31T23:59:59Z'${out.slice(end)}`;
  }
  return out;
}

const postgres = storeTargets.find((t) => t.name === "postgres");
if (postgres === undefined) throw new Error("no PostgreSQL store target");

describe("the dashboard's campaign panels on a PostgreSQL store", () => {
  it("run against the migrated schema and compare treated with control churn after the campaign date", async () => {
    const store = await openStore(await postgres.fresh());
    try {
      const run = await startOrResumeRun(store, { kind: "daily", asOf: "2026-03-02", modelName: "churn", modelVersion: "3", source: "x.parquet" });
      await store.db
        .insertInto("campaigns")
        .values({
          name: "winback-2026-03-02",
          run_id: run.run_id,
          as_of: "2026-03-02",
          model_name: "churn",
          model_version: "3",
          rule: "{}",
          ranking: "risk",
          params: "{}",
          seed: 1,
          budget: null,
          control_share: 0.5,
          cooldown_days: 30,
          offer: null,
          offer_cost: null,
          counts: "{}",
          treated: 2,
          control: 2,
          planned_at: "2026-03-02T07:00:00Z",
        })
        .execute();
      const member = (customer_id: string, arm: "treatment" | "control", rank: number) => ({
        campaign: "winback-2026-03-02",
        customer_id,
        arm,
        rank,
        probability: 0.8,
        band: "high",
        model_version: "3",
        value: null,
        expected_value: null,
        planned_at: "2026-03-02T07:00:00Z",
      });
      await store.db
        .insertInto("campaign_members")
        .values([member("t1", "treatment", 1), member("t2", "treatment", 2), member("c1", "control", 3), member("c2", "control", 4)])
        .execute();
      const outcome = (customer_id: string, observed_at: string, churned: number) => ({
        customer_id,
        observed_at,
        churned,
        source: "test",
        ingested_at: "2026-05-01T00:00:00Z",
      });
      // Outcomes seen before the campaign are none of its doing: t2 has only such; c2 has one before and one after.
      await store.db
        .insertInto("outcomes")
        .values([
          outcome("t1", "2026-04-01", 0),
          outcome("t2", "2026-02-01", 1),
          outcome("c1", "2026-04-01", 1),
          outcome("c2", "2026-01-15", 1),
          outcome("c2", "2026-04-02", 0),
        ])
        .execute();

      const storeQueries = targets.filter((t) => t.datasource.uid === "churnops-store");
      expect(storeQueries.length).toBeGreaterThanOrEqual(2);
      for (const t of storeQueries) {
        const result = await sql.raw(expandMacros(t.rawSql ?? "")).execute(store.db);
        expect(result.rows, t.panel).toBeInstanceOf(Array);
      }
      const results = storeQueries.find((t) => t.panel.startsWith("Campaign results"));
      const rows = (await sql.raw(expandMacros(results?.rawSql ?? "")).execute(store.db)).rows as Record<string, unknown>[];
      expect(rows).toHaveLength(1);
      const row = rows[0] ?? {};
      expect(Number(row.treated)).toBe(2);
      expect(Number(row.control)).toBe(2);
      expect(Number(row.with_outcome)).toBe(3);
      expect(Number(row.churn_rate_treated)).toBe(0);
      expect(Number(row.churn_rate_control)).toBe(0.5);
      expect(Number(row.churn_reduction)).toBe(0.5);
    } finally {
      await store.close();
    }
  });
});

describe("the churnops.toml shipped in the images", () => {
  it("is a valid config that serves on every interface and keeps secrets out", () => {
    const file = join(DEPLOY, "k8s", "base", "churnops.toml");
    const config = loadConfig({ file, env: { CHURNOPS_HOME: "/var/lib/churnops", CHURNOPS_DB_URL: "postgresql://u@db/churnops" } });
    expect(config.server.host).toBe("0.0.0.0");
    expect(config.server.auth).toBe("required");
    // The pod's terminationGracePeriodSeconds (30 s) must outlast the server's drain.
    expect(config.server.shutdown_timeout_ms).toBeLessThan(30_000);
    const settings = readFileSync(file, "utf8")
      .split("\n")
      .filter((line) => !line.trimStart().startsWith("#"));
    expect(settings.filter((line) => /password|token|api_keys|admin_key|:\/\/[^"]*@/i.test(line))).toEqual([]);
  });

  it("of the Lambda image is valid and keeps the prediction log and per-instance rate limit off", () => {
    const config = loadConfig({ file: join(DEPLOY, "lambda", "churnops.toml"), env: { CHURNOPS_HOME: "/tmp/churnops" } });
    expect(config.server.prediction_log.enabled).toBe(false);
    expect(config.server.rate_limit.max).toBe(0);
    expect(config.server.auth).toBe("required");
  });
});
