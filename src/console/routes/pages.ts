import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAudit } from "../../store/audit.js";
import type { Store } from "../../store/db.js";
import { addOptOuts } from "../../store/outcomes.js";
import { customerView } from "../../store/read/customer.js";
import { customerInputs } from "../../store/read/customer-inputs.js";
import { customerReasons, reasonsOf } from "../../store/read/customer-reasons.js";
import { overview, RISK_BINS, type RunStats, runStats } from "../../store/read/overview.js";
import { RISK_SORTS, riskPage } from "../../store/read/risk.js";
import { quarantineView, runsView } from "../../store/read/runs-view.js";
import { getRun, listRuns, type ScoreRun } from "../../store/runs.js";
import { decodeFeatures, storedCategoricalFeatures } from "../../store/score-features.js";
import { audit, currentUser } from "../auth.js";
import { barChart, probabilityLineChart } from "../charts.js";
import { requestTranslator } from "../locale.js";
import type { BundleOfRun, Render } from "../plugin.js";
import { ReasonWording, reasonsWaterfall, type ShownReason, valueText } from "../reasons-view.js";
import { resolveRiskFilter } from "../risk-filter.js";
import type { RunStatsCache } from "../run-cache.js";

const PAGE_SIZE = 50;
const customerParams = z.object({ id: z.string().min(1).max(200) });
const runParams = z.object({ id: z.string().min(1).max(200) });

export function pageRoutes(app: FastifyInstance, options: { store: Store; prefix: string; cache: RunStatsCache; bundleOf: BundleOfRun }, render: Render): void {
  const { store, prefix, cache, bundleOf } = options;
  const wording = new ReasonWording();
  const statsOf = (run: ScoreRun): Promise<RunStats> => (run.status === "complete" ? cache.get(run.run_id) : runStats(store, run.run_id));

  app.get("/", async (request, reply) => {
    const view = await overview(store, { stats: (runId) => cache.get(runId) });
    // The chart's words follow the reader's language, so it is drawn per request (it is small).
    const locale = requestTranslator(request);
    const chart =
      view.distribution.length === 0
        ? null
        : barChart({
            width: 640,
            height: 220,
            label: locale.t("overview.distribution_desc"),
            values: view.distribution,
            labels: view.distribution.map((_, i) => locale.num(i / RISK_BINS, 2)),
            labelEvery: 4,
            formatValue: (n) => locale.num(n),
          });
    return render(request, reply, "overview", { view, chart });
  });

  app.get("/runs", async (request, reply) => render(request, reply, "runs", { view: await runsView(store) }));

  app.get("/runs/:id/quarantine", async (request, reply) => {
    const { id } = runParams.parse(request.params);
    const run = await getRun(store, id);
    return render(request, reply, "quarantine", { run, rows: await quarantineView(store, run.run_id) });
  });

  app.get("/risk", async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { filter, categorical, missingToken } = await resolveRiskFilter(store, query, bundleOf);
    const after = typeof query.after === "string" ? query.after : undefined;
    const page = await riskPage(store, filter, { after, limit: PAGE_SIZE });
    const [runs, stats, stored] = await Promise.all([
      listRuns(store, 20),
      statsOf(page.run),
      reasonsOf(
        store,
        page.run.run_id,
        page.rows.map((r) => r.customer_id),
      ),
    ]);
    const locale = requestTranslator(request);
    const bundle = stored.size === 0 ? null : await bundleOf(page.run);
    // The list shows each customer's top reason (the first stored one), worded in the reader's language.
    const topReasons = new Map<string, ShownReason & { shown: string }>();
    for (const [id, reasons] of stored) {
      const top = wording.show(reasons.slice(0, 1), bundle, locale.locale)[0];
      if (top !== undefined) topReasons.set(id, { ...top, shown: `${top.label}: ${valueText(top.value, locale)}` });
    }
    const params = new URLSearchParams([
      ...Object.entries({ run: filter.run, band: filter.band, min_p: filter.min_p, max_p: filter.max_p, q: filter.q, sort: filter.sort })
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
      ...(filter.categories ?? []).map((c): [string, string] => [c.feature, c.value]),
    ]);
    const withAfter = (cursor: string): string => `${prefix}/risk?${new URLSearchParams([...params, ["after", cursor]]).toString()}`;
    return render(request, reply, "risk", {
      filter,
      page,
      topReasons,
      hasReasons: stored.size > 0,
      categorical: categorical.map((c) => ({ name: c.name, categories: c.categories.filter((v) => v !== missingToken) })),
      chosen: Object.fromEntries((filter.categories ?? []).map((c) => [c.feature, c.value])),
      runs: runs.filter((r) => r.status === "complete"),
      bands: stats.bands.map((b) => b.band),
      sorts: RISK_SORTS,
      csvHref: `${prefix}/risk.csv?${params.toString()}`,
      nextHref: page.next === null ? null : withAfter(page.next),
      firstHref: after === undefined ? null : `${prefix}/risk?${params.toString()}`,
    });
  });

  app.get("/customers/:id", async (request, reply) => {
    const { id } = customerParams.parse(request.params);
    const view = await customerView(store, id);
    if (view === null) reply.status(404);
    const locale = requestTranslator(request);
    const chart =
      view === null || view.scores.length === 0
        ? null
        : probabilityLineChart({
            width: 640,
            height: 220,
            label: locale.t("customer.history_desc"),
            points: view.scores.map((s) => ({ label: locale.date(s.as_of), value: s.probability })),
            formatValue: (n) => locale.pct(n, 0),
          });
    const done = (request.query as Record<string, unknown>).done === "opt-out";
    return render(request, reply, "customer", {
      id,
      view,
      chart,
      done,
      reasons: view === null ? null : await reasonsPanel(id, locale),
      inputs: view === null ? null : await inputsPanel(id),
    });
  });

  /** The customer's latest stored reasons, reworded for the reader, with their waterfall when the bundle is at hand. */
  async function reasonsPanel(id: string, locale: ReturnType<typeof requestTranslator>) {
    const stored = await customerReasons(store, id);
    if (stored === null) return null;
    const run = await getRun(store, stored.runId);
    const bundle = await bundleOf(run);
    const reasons = wording.show(stored.reasons, bundle, locale.locale);
    return {
      runId: stored.runId,
      modelVersion: stored.modelVersion,
      asOf: run.as_of,
      probability: stored.probability,
      reasons: reasons.map((r) => ({ ...r, valueText: valueText(r.value, locale) })),
      chart: reasonsWaterfall(reasons, stored.probability, bundle, locale),
    };
  }

  /** The categorical inputs the customer's latest score kept, decoded with that run's bundle. */
  async function inputsPanel(id: string): Promise<{ runId: string; values: [string, string | null][] } | null> {
    const stored = await customerInputs(store, id);
    if (stored === null) return null;
    const bundle = await bundleOf({ model_name: stored.modelName, model_version: stored.modelVersion });
    if (bundle === null) return null;
    const decoded = decodeFeatures(stored.features, storedCategoricalFeatures(bundle));
    return decoded === null ? null : { runId: stored.runId, values: Object.entries(decoded) };
  }

  app.post("/customers/:id/opt-out", { config: { consoleAccess: "operator" }, preHandler: app.csrfProtection }, async (request, reply) => {
    const { id } = customerParams.parse(request.params);
    const user = currentUser(request);
    const added = await addOptOuts(store, [{ customer_id: id, source: `console:${user.name}`, opted_out_at: new Date().toISOString() }]);
    await audit(store, request, "customer.opt_out", id, { added });
    return reply.redirect(`${prefix}/customers/${encodeURIComponent(id)}?done=opt-out`, 303);
  });

  app.get("/audit", async (request, reply) => render(request, reply, "audit", { entries: await listAudit(store) }));
}
