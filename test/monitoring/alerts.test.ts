import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { type AlertInput, raiseAlerts, slackPayload } from "../../src/monitoring/alerts.js";
import { batchMetricsText, registerMonitoringMetrics } from "../../src/monitoring/metrics.js";
import { openStore } from "../../src/store/db.js";
import { listAlerts } from "../../src/store/monitoring.js";
import { finishRun, startOrResumeRun } from "../../src/store/runs.js";
import { storeTargets } from "../helpers/stores.js";
import { quietLog, recordingSink } from "./helpers.js";

const drift = (severity: "warn" | "alert"): AlertInput => ({
  rule: "drift.feature",
  severity,
  subject: "monthly_charges",
  message: "monthly_charges drifted: PSI 0.4",
  details: { psi: 0.4 },
  modelName: "churn",
  modelVersion: "3",
  runId: "daily-2026-03-02-churn-v3",
});

describe.each(storeTargets)("alerts and metrics on $name", (target) => {
  it("raises one alert per condition per day: repeats are recorded once and sent once; an escalation or a new day is new", async () => {
    const store = await openStore(await target.fresh());
    try {
      const sink = recordingSink();
      const day1 = new Date("2026-03-02T08:00:00Z");
      const first = await raiseAlerts(store, [drift("warn")], sink, day1);
      const again = await raiseAlerts(store, [drift("warn"), drift("warn")], sink, new Date("2026-03-02T17:00:00Z"));
      expect(first.map((a) => a.new)).toEqual([true]);
      expect(again.map((a) => a.new)).toEqual([false, false]);
      expect(sink.posted).toHaveLength(1);
      expect(await raiseAlerts(store, [drift("alert")], sink, day1)).toMatchObject([{ new: true, severity: "alert" }]);
      expect(await raiseAlerts(store, [drift("warn")], sink, new Date("2026-03-03T08:00:00Z"))).toMatchObject([{ new: true }]);
      expect(sink.posted).toHaveLength(3);
      const body = sink.posted[0] as { text: string; blocks: unknown[] };
      expect(body.text).toMatch(/WARN drift\.feature \(monthly_charges\): monthly_charges drifted/);
      expect(body.blocks).toHaveLength(1);
      const rows = await listAlerts(store);
      expect(rows).toHaveLength(3);
      expect(rows.every((r) => r.delivered_at !== null && r.delivery_attempts === 1)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("keeps an alert whose webhook failed and delivers it with the next one", async () => {
    const store = await openStore(await target.fresh());
    try {
      let up = false;
      const bodies: string[] = [];
      const sink = {
        log: quietLog(),
        webhookUrl: "http://alerts.invalid/hook",
        timeoutMs: 1000,
        maxAttempts: 5,
        fetch: async (_url: string | URL | Request, init?: RequestInit) => {
          if (!up) return new Response("down", { status: 503 });
          bodies.push(String(init?.body));
          return new Response("ok", { status: 200 });
        },
      };
      await raiseAlerts(store, [drift("alert")], sink, new Date("2026-03-02T08:00:00Z"));
      const failed = await listAlerts(store);
      expect(failed[0]?.delivered_at).toBeNull();
      expect(failed[0]?.delivery_error).toBe("webhook answered HTTP 503");
      up = true;
      await raiseAlerts(store, [{ ...drift("alert"), subject: "tenure_months" }], sink, new Date("2026-03-02T09:00:00Z"));
      expect(bodies).toHaveLength(2);
      expect((await listAlerts(store)).every((a) => a.delivered_at !== null)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("exposes the last batch run's rows, duration, largest PSI, model and today's alerts to a Prometheus registry", async () => {
    const store = await openStore(await target.fresh());
    try {
      const run = await startOrResumeRun(store, { kind: "daily", asOf: "2026-03-02", modelName: "churn", modelVersion: "3", source: "/data/x.parquet" });
      await store.db.updateTable("score_runs").set({ rows_read: 1000, rows_scored: 990, rows_quarantined: 10 }).where("run_id", "=", run.run_id).execute();
      await finishRun(store, run.run_id, { status: "complete", durationMs: 2500 });
      await raiseAlerts(store, [drift("alert")], { ...recordingSink(), webhookUrl: null });
      const registry = new Registry();
      registerMonitoringMetrics(registry, store);
      const text = await registry.metrics();
      expect(text).toContain('churnops_batch_rows{kind="daily",outcome="quarantined"} 10');
      expect(text).toContain('churnops_batch_rows{kind="daily",outcome="scored"} 990');
      expect(text).toContain('churnops_batch_duration_seconds{kind="daily"} 2.5');
      expect(text).toContain('churnops_batch_model_info{kind="daily",name="churn",version="3"} 1');
      expect(text).toContain('churnops_alerts_today{severity="alert"} 1');
    } finally {
      await store.close();
    }
  });
});

describe("batch metrics textfile", () => {
  it("writes the Prometheus text format with every batch gauge", async () => {
    const text = await batchMetricsText({
      runId: "r",
      kind: "monthly",
      modelName: "churn",
      modelVersion: "7",
      rowsRead: 5,
      rowsScored: 4,
      rowsQuarantined: 1,
      durationMs: 1500,
      maxFeaturePsi: 0.31,
      finishedAt: 1_700_000_000,
    });
    expect(text).toContain("# TYPE churnops_batch_rows gauge");
    expect(text).toContain('churnops_batch_max_feature_psi{kind="monthly"} 0.31');
    expect(text).toContain('churnops_batch_duration_seconds{kind="monthly"} 1.5');
    expect(text).toContain('churnops_batch_model_info{kind="monthly",name="churn",version="7"} 1');
    expect(
      slackPayload({
        severity: "alert",
        rule: "performance.recall",
        subject: "v7 2026-03",
        message: "recall 0.5",
        model_name: "churn",
        model_version: "7",
        run_id: null,
        day: "2026-04-01",
      }).text,
    ).toMatch(/^:rotating_light: churnops ALERT performance\.recall/);
  });
});
