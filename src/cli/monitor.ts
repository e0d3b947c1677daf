import type { Command } from "commander";
import { alertSink, type RaisedAlert } from "../monitoring/alerts.js";
import { checkDrift, type DriftReport } from "../monitoring/check-drift.js";
import { checkEstimate, compareWithRealised, type EstimateComparison } from "../monitoring/check-estimate.js";
import type { DriftFinding } from "../monitoring/drift.js";
import { checkPerformance, type PerformanceResult } from "../monitoring/performance.js";
import type { EstimateReport } from "../store/estimates.js";
import { listAlerts } from "../store/monitoring.js";
import { type CommandContext, output, parseChoice } from "./context.js";
import { table } from "./format.js";
import { stepProgress } from "./progress.js";

const num = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits));

function statistic(f: DriftFinding): string {
  if (f.ks !== null) return `KS ${num(f.ks.statistic)} p=${f.ks.p_value.toPrecision(2)}`;
  if (f.chi_square !== null) return `χ² ${num(f.chi_square.statistic, 1)} df=${f.chi_square.df} p=${f.chi_square.p_value.toPrecision(2)}`;
  if (f.share !== null) return `share ${num(f.share, 4)}`;
  return "";
}

function formatAlerts(alerts: readonly RaisedAlert[]): string[] {
  if (alerts.length === 0) return [];
  return ["", "Alerts:", ...alerts.map((a) => `  ${a.severity.toUpperCase().padEnd(6)}${a.rule} ${a.subject}${a.new ? "" : " (already raised today)"}`)];
}

export function formatDrift(report: DriftReport, alerts: readonly RaisedAlert[]): string {
  const rows = report.findings.map((f) => `  ${f.severity.padEnd(7)}${f.feature.padEnd(24)}${num(f.psi).padEnd(9)}${statistic(f).padEnd(30)}${f.reason}`);
  return [
    `Drift of run ${report.run_id} (model ${report.model_name} v${report.model_version}, ${report.rows_profiled} rows): ${report.severity.toUpperCase()}`,
    `  ${"".padEnd(7)}${"feature".padEnd(24)}${"PSI".padEnd(9)}${"test".padEnd(30)}decision`,
    ...rows,
    ...report.notes.map((n) => `note: ${n}`),
    ...formatAlerts(alerts),
  ].join("\n");
}

const interval = (b: [number, number] | null): string => (b === null ? "-" : `${num(b[0])}–${num(b[1])}`);

export function formatEstimate(r: EstimateReport, alerts: readonly RaisedAlert[]): string {
  return [
    `Estimated performance of run ${r.run_id} (model ${r.model_name} v${r.model_version}, ${r.rows} customers, before labels): ${r.status.toUpperCase()}`,
    `  ${"metric".padEnd(20)}${"estimate".padEnd(11)}95% band`,
    `  ${"recall".padEnd(20)}${num(r.recall).padEnd(11)}${interval(r.band.recall)}`,
    `  ${"precision".padEnd(20)}${num(r.precision).padEnd(11)}${interval(r.band.precision)}`,
    `  ${"ROC AUC".padEnd(20)}${num(r.roc_auc).padEnd(11)}${interval(r.band.roc_auc)}`,
    `  ${"expected churners".padEnd(20)}${num(r.expected_churners, 0).padEnd(11)}${r.band.expected_churners.map((v) => v.toFixed(0)).join("–")}  (${r.flagged} flagged at threshold ${num(r.threshold)})`,
    `  ${r.reason}`,
    `  calibration: ${r.calibration.reason}`,
    ...formatAlerts(alerts),
  ].join("\n");
}

function formatComparison(rows: readonly EstimateComparison[]): string[] {
  const withEstimate = rows.filter((r) => r.estimated !== null);
  if (withEstimate.length === 0) return [];
  return [
    "",
    "Estimated (before labels) vs realised:",
    `  ${"version".padEnd(8)}${"month".padEnd(9)}${"recall est".padEnd(12)}${"band".padEnd(14)}${"realised".padEnd(10)}${"error".padEnd(9)}${"auc est".padEnd(9)}${"realised".padEnd(10)}error`,
    ...withEstimate.map(
      (r) =>
        `  v${r.model_version.padEnd(7)}${r.month.padEnd(9)}${num(r.estimated?.recall).padEnd(12)}${interval(r.estimated?.recall_band ?? null).padEnd(14)}${num(r.realised.recall).padEnd(10)}${num(r.error.recall).padEnd(9)}${num(r.estimated?.roc_auc).padEnd(9)}${num(r.realised.roc_auc).padEnd(10)}${num(r.error.roc_auc)}${r.recall_in_band === false ? "  realised recall outside the band: concept drift or miscalibration" : ""}`,
    ),
  ];
}

export function formatPerformance(result: PerformanceResult, comparison: readonly EstimateComparison[] = []): string {
  if (result.reports.length === 0) return "No labelled scores yet: ingest outcomes with `churnops outcomes ingest` once they are known.";
  const lines = result.reports.map(
    (r) =>
      `  v${r.model_version.padEnd(7)}${r.month.padEnd(9)}${String(r.labels.labelled).padEnd(9)}${String(r.labels.positives).padEnd(8)}${num(r.recall).padEnd(8)}${num(r.precision).padEnd(10)}${num(r.roc_auc).padEnd(8)}${num(r.calibration.ece).padEnd(8)}${num(r.recall_target, 2).padEnd(8)}${r.status.padEnd(13)}${r.labels.policy}`,
  );
  return [
    `Realised performance (${result.labels} labels; alert when recall < target − ${result.tolerance}):`,
    `  ${"version".padEnd(8)}${"month".padEnd(9)}${"labels".padEnd(9)}${"churned".padEnd(8)}${"recall".padEnd(8)}${"precision".padEnd(10)}${"roc_auc".padEnd(8)}${"ece".padEnd(8)}${"target".padEnd(8)}${"status".padEnd(13)}labels used`,
    ...lines,
    ...formatComparison(comparison),
    ...formatAlerts(result.alerts),
  ].join("\n");
}

export function registerMonitor(program: Command, ctx: () => CommandContext): void {
  const monitor = program.command("monitor").description("is the model still right: input drift, realised performance, alerts");
  monitor
    .command("drift")
    .description("compare a score run's inputs and scores with the model's reference profile; stores the report and raises alerts")
    .option("--run <id>", "score run id, or latest", "latest")
    .option("--data <source>", "read the run's inputs from here instead of the run record (file or database URL)")
    .option("--table <name>", "table, with a database URL in --data")
    .option("--query <sql>", "query, with a database URL in --data")
    .option("--bundle <dir>", "the run's model bundle directory (default: the registered version the run names)")
    .option("--json", "print JSON")
    .action(async (flags: { run: string; data?: string; table?: string; query?: string; bundle?: string; json?: boolean }) => {
      const c = ctx();
      const store = await c.store();
      const source = flags.data === undefined ? undefined : { data: flags.data, table: flags.table, query: flags.query };
      const { report, alerts } = await checkDrift({ store, config: c.config, log: c.log, alerts: alertSink(c.config, c.log) }, flags.run, {
        source,
        bundleDir: flags.bundle,
      });
      output(flags.json === true, { ...report, alerts }, () => formatDrift(report, alerts));
    });
  monitor
    .command("performance")
    .description(
      "realised recall, precision, ROC AUC and calibration per model version and score month from ingested outcomes, beside the estimates made before labels; --estimated: estimate a run now",
    )
    .option("--labels <policy>", "clean: customers who got no offer (control group reweighted); all: every labelled customer", "clean")
    .option("--estimated", "estimate a score run's performance from its calibrated probabilities (no labels needed)")
    .option("--run <id>", "with --estimated: score run id, or latest", "latest")
    .option("--bundle <dir>", "with --estimated: the run's model bundle directory (default: the registered version the run names)")
    .option("--json", "print JSON")
    .action(async (flags: { labels: string; estimated?: boolean; run: string; bundle?: string; json?: boolean }) => {
      const c = ctx();
      const deps = { store: await c.store(), config: c.config, log: c.log, alerts: alertSink(c.config, c.log) };
      if (flags.estimated === true) {
        const { report, alerts } = await checkEstimate(deps, flags.run, { bundleDir: flags.bundle });
        output(flags.json === true, { ...report, alerts }, () => formatEstimate(report, alerts));
        return;
      }
      const labels = parseChoice(flags.labels, "--labels", ["clean", "all"] as const);
      const progress = stepProgress("realised performance: model version × month");
      const result = await checkPerformance(deps, { labels, onProgress: progress.update }).finally(() => progress.stop());
      const comparison = await compareWithRealised(deps.store, result.reports);
      output(flags.json === true, { ...result, estimated_vs_realised: comparison }, () => formatPerformance(result, comparison));
    });
  monitor
    .command("alerts")
    .description("recent alerts (one per condition per day)")
    .option("--since <date>", "only alerts raised on or after this day (YYYY-MM-DD)")
    .option("--limit <n>", "at most this many", "50")
    .option("--json", "print JSON")
    .action(async (flags: { since?: string; limit: string; json?: boolean }) => {
      const c = ctx();
      const rows = await listAlerts(await c.store(), { since: flags.since, limit: Math.max(1, Number(flags.limit) || 50) });
      const alerts = rows.map((r) => ({ ...r, details: JSON.parse(r.details) as unknown }));
      output(flags.json === true, alerts, () =>
        alerts.length === 0
          ? "No alerts."
          : table(
              ["raised", "severity", "rule", "subject", "delivery", "message"],
              alerts.map((a) => [
                a.created_at.slice(0, 19),
                a.severity.toUpperCase(),
                a.rule,
                a.subject,
                a.delivered_at === null ? (a.delivery_error ?? "not sent") : "sent",
                a.message,
              ]),
            ),
      );
    });
}
