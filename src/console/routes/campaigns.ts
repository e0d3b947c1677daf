import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { planCampaign, previewCampaign } from "../../campaigns/plan.js";
import { campaignReport, type EffectReport } from "../../campaigns/report.js";
import { chooseAdapter, sendCampaign } from "../../campaigns/send.js";
import { wilson } from "../../campaigns/stats.js";
import { campaignStatus } from "../../campaigns/status.js";
import type { Config } from "../../config.js";
import { ChurnopsError, isChurnopsError } from "../../errors.js";
import { registeredBands } from "../../model/registry.js";
import { redactUrl } from "../../redact.js";
import { listCampaigns } from "../../store/campaigns.js";
import type { Store } from "../../store/db.js";
import { listRuns } from "../../store/runs.js";
import { audit } from "../auth.js";
import { type CampaignForm, parseCampaignForm, planRequestOf, RANKINGS, RULE_KINDS } from "../campaign-form.js";
import { intervalChart } from "../charts.js";
import { givenFields, parseInput } from "../forms.js";
import type { Translator } from "../i18n.js";
import { requestTranslator } from "../locale.js";
import type { Render } from "../plugin.js";
import type { RunStatsCache } from "../run-cache.js";
import { consoleUpliftSource, qiniChart } from "../uplift-chart.js";

const nameParams = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "name: not a campaign name") });
const sendBody = z.object({ confirm: z.literal("yes", { error: "confirm: tick the box to confirm sending" }), _csrf: z.string().optional() });

const Z95 = 1.959963984540054;

/** Churn per arm with its Wilson interval, and the difference with Newcombe's: the results page's chart. */
function effectChart(report: EffectReport, i: Translator): string | null {
  if (report.absoluteReduction === null || report.treatment.churnRate === null || report.control.churnRate === null) return null;
  const arm = (a: EffectReport["treatment"]): [number, number] => wilson(a.churned, a.observed, Z95);
  return intervalChart({
    width: 640,
    height: 170,
    label: i.t("campaigns.chart_desc"),
    rows: [
      { label: i.t("campaigns.churn_treated"), value: report.treatment.churnRate, ci: arm(report.treatment) },
      { label: i.t("campaigns.churn_control"), value: report.control.churnRate, ci: arm(report.control) },
      { label: i.t("campaigns.reduction"), value: report.absoluteReduction, ci: report.absoluteReductionCi95 },
    ],
    reference: 0,
    formatValue: (n) => i.pct(n),
  });
}

/**
 * Campaign pages: the list, the builder with its live preview (the same selection code as the plan, nothing
 * recorded), planning and sending (operator, CSRF, confirmed, audited), and the results with their interval.
 */
export function campaignRoutes(app: FastifyInstance, options: { store: Store; settings: Config; prefix: string; cache: RunStatsCache }, render: Render): void {
  const { store, settings, prefix, cache } = options;
  const modelBands = registeredBands(settings);
  const uplift = consoleUpliftSource(store, settings);

  const builder = async (request: FastifyRequest, reply: FastifyReply, form: Record<string, string>, extra: object = {}) => {
    const runs = (await listRuns(store, 20)).filter((r) => r.status === "complete");
    const chosen = runs.find((r) => r.run_id === form.run) ?? runs[0];
    return render(request, reply, "campaign-new", {
      form,
      runs,
      // The band field suggests the bands of the chosen run (the latest when none is chosen).
      bands: chosen === undefined ? [] : (await cache.get(chosen.run_id)).bands.map((b) => b.band),
      ruleKinds: RULE_KINDS,
      rankings: RANKINGS,
      defaults: settings.campaigns,
      preview: null,
      formError: null,
      ...extra,
    });
  };

  /** The preview of a form's settings, or the form's first problem (with its field) to show in its place. */
  const preview = async (fields: Record<string, string>) => {
    let form: CampaignForm;
    try {
      form = parseCampaignForm(fields);
      return { preview: await previewCampaign(store, planRequestOf(form, settings.campaigns, modelBands, uplift)), formError: null };
    } catch (err) {
      if (isChurnopsError(err)) return { preview: null, formError: { field: err.field ?? null, message: err.message } };
      throw err;
    }
  };

  app.get("/campaigns", async (request, reply) => render(request, reply, "campaigns", { campaigns: await listCampaigns(store) }));

  app.get("/campaigns/new", async (request, reply) => builder(request, reply, givenFields(request.query)));

  // The live preview: an HTML fragment for the builder's output region (fetched by static/campaign-preview.js).
  app.get("/campaigns/preview", async (request, reply) => {
    const result = await preview(givenFields(request.query));
    if (result.formError !== null) reply.status(400);
    return render(request, reply, "campaign-preview", { ...result, fragment: true });
  });

  app.post("/campaigns", { config: { consoleAccess: "operator" }, preHandler: app.csrfProtection }, async (request, reply) => {
    const fields = givenFields(request.body);
    const { _csrf: _token, step, ...form } = fields;
    if (step === "preview") return builder(request, reply, form, await preview(form));
    try {
      const parsed = parseCampaignForm(form);
      if (parsed.name === "") throw new ChurnopsError("bad_input", "name: give the campaign a name (letters, digits, '.', '_' and '-')", { field: "name" });
      const result = await planCampaign(store, planRequestOf(parsed, settings.campaigns, modelBands, uplift));
      await audit(store, request, "campaign.plan", parsed.name, {
        status: result.status,
        run_id: result.campaign.run_id,
        treated: result.counts.treated,
        control: result.counts.control,
      });
      return reply.redirect(`${prefix}/campaigns/${encodeURIComponent(parsed.name)}?done=${result.status}`, 303);
    } catch (err) {
      if (!isChurnopsError(err)) throw err;
      reply.status(err.code === "conflict" ? 409 : 400);
      return builder(request, reply, form, { formError: { field: err.field ?? null, message: err.message } });
    }
  });

  app.get("/campaigns/:name", async (request, reply) => {
    const { name } = parseInput(nameParams, request.params);
    const [status, report] = await Promise.all([campaignStatus(store, name), campaignReport(store, name, settings.campaigns.min_effect)]);
    const done = (request.query as Record<string, unknown>).done;
    return render(request, reply, "campaign", {
      status,
      report,
      chart: effectChart(report, requestTranslator(request)),
      qini: qiniChart(report, requestTranslator(request)),
      done: typeof done === "string" && ["planned", "already_planned", "sent"].includes(done) ? done : null,
    });
  });

  const target = (name: string): string => {
    const adapter = chooseAdapter(name, {}, settings.campaigns.delivery, settings.home);
    return adapter.kind === "export" ? adapter.path : redactUrl(adapter.url);
  };

  app.get("/campaigns/:name/send", { config: { consoleAccess: "operator" } }, async (request, reply) => {
    const { name } = parseInput(nameParams, request.params);
    const status = await campaignStatus(store, name);
    return render(request, reply, "campaign-send", { status, adapter: settings.campaigns.delivery.adapter, target: target(name) });
  });

  app.post("/campaigns/:name/send", { config: { consoleAccess: "operator" }, preHandler: app.csrfProtection }, async (request, reply) => {
    const { name } = parseInput(nameParams, request.params);
    parseInput(sendBody, request.body);
    const adapter = chooseAdapter(name, {}, settings.campaigns.delivery, settings.home);
    const summary = await sendCampaign(store, { campaign: name, adapter, delivery: settings.campaigns.delivery });
    await audit(store, request, "campaign.send", name, {
      adapter: summary.adapter,
      target: summary.adapter === "webhook" ? redactUrl(summary.target) : summary.target,
      delivered: summary.delivered,
      states: summary.states,
    });
    return reply.redirect(`${prefix}/campaigns/${encodeURIComponent(name)}?done=sent`, 303);
  });
}
