import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Config } from "../../config.js";
import type { Store } from "../../store/db.js";
import { driftHistory, latencyByDay, METRICS, type Metric, performanceView, recentAlerts } from "../../store/read/monitoring-view.js";
import { estimateBandChart, seriesChart } from "../charts.js";
import { parseInput } from "../forms.js";
import { requestTranslator } from "../locale.js";
import type { Render } from "../plugin.js";

const query = z.object({
  metric: z.enum(METRICS as [Metric, ...Metric[]], { error: `metric: expected one of ${METRICS.join(", ")}` }).default("recall"),
});

const dayMs = (iso: string): number => Date.parse(`${iso.slice(0, 10)}T00:00:00Z`);

/**
 * The monitoring page: PSI per feature over the stored drift reports with the latest findings, estimated
 * performance (band) against realised points for one metric (issue 20), the comparison table per model version
 * and month, the alert log, and the API's latency per day.
 */
export function monitoringRoutes(app: FastifyInstance, options: { store: Store; settings: Config }, render: Render): void {
  const { store, settings } = options;

  app.get("/monitoring", async (request, reply) => {
    const { metric } = parseInput(query, request.query);
    const i = requestTranslator(request);
    const [drift, performance, alerts, latency] = await Promise.all([driftHistory(store), performanceView(store), recentAlerts(store), latencyByDay(store)]);

    const features = [...new Set(drift.flatMap((r) => r.findings.filter((f) => f.psi !== null).map((f) => f.feature)))];
    const psiChart =
      drift.length === 0
        ? null
        : seriesChart({
            width: 720,
            height: 280,
            label: i.t("monitoring.psi_desc"),
            labels: drift.map((r) => i.date(r.as_of)),
            series: features.map((name) => ({ name, values: drift.map((r) => r.findings.find((f) => f.feature === name)?.psi ?? null) })),
            references: [
              { value: settings.monitoring.drift.psi_warn, label: i.t("monitoring.warn") },
              { value: settings.monitoring.drift.psi_alert, label: i.t("monitoring.alert") },
            ],
            formatValue: (n) => i.num(n, 2),
          });

    const estimates = performance.estimates.map((e) => ({
      time: dayMs(e.as_of),
      label: `${i.date(e.as_of)} · v${e.model_version}`,
      value: e[metric],
      band: e.band[metric],
    }));
    const runTime = new Map(performance.estimates.map((e) => [e.run_id, dayMs(e.as_of)]));
    // Realised values are judged per (version, month) on the month's first run: drawn at that run's date when
    // it has an estimate, else at the month's first day. The chart shows the clean-label policy only.
    const realised = performance.realised
      .filter((r) => r.labels === "clean" && r[metric] !== null)
      .map((r) => ({
        time: runTime.get(r.run_id) ?? dayMs(`${r.month}-01`),
        label: `${r.month} · v${r.model_version} (${i.num(r.labelled)} ${i.t("monitoring.labels")})`,
        value: r[metric] as number,
      }));
    const bandChart =
      estimates.length + realised.length === 0
        ? null
        : estimateBandChart({
            width: 720,
            height: 280,
            label: i.t("monitoring.estimate_desc", { metric: i.t(`metric.${metric}`) }),
            estimates,
            realised,
            formatValue: (n) => i.num(n, 2),
            formatTime: (t) => i.date(new Date(t).toISOString()),
            legend: { band: i.t("monitoring.band"), estimate: i.t("monitoring.estimated"), realised: i.t("monitoring.realised") },
          });

    return render(request, reply, "monitoring", {
      metric,
      metrics: METRICS,
      drift,
      latestDrift: drift[drift.length - 1] ?? null,
      psiChart,
      bandChart,
      performance,
      alerts,
      latency,
    });
  });
}
