import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { type ExplainedFeature, readBundle } from "../model/bundle.js";
import { resolveBundle } from "../model/registry.js";
import type { StoredReason } from "../store/read/customer-reasons.js";
import type { Playbook, PlaybookRule, TemplateField } from "./playbook-schema.js";

export { type Playbook, playbookSchema } from "./playbook-schema.js";

/**
 * The offer playbook (issue #17.4, docs/campaigns.md "Offers by reason"): rules from a member's reason (a feature,
 * optionally a value or a value range) to an offer code and a message template. Each member of a campaign —
 * treated and control alike, so the report can compare the arms within an offer — gets the offer of the first
 * rule that matches their highest-ranked reason (reason 1 before reason 2; rules in the order written), or the
 * playbook's default offer when none does.
 */

/** Why a member got their offer: the reason that matched a rule (null when the default offer applied). */
export interface OfferChoice {
  offer: string | null;
  /** 1-based rule number in the playbook, null for the default. */
  rule: number | null;
  reason: (StoredReason & { rank: number }) | null;
  message: string | null;
}

function ruleMatches(rule: PlaybookRule, reason: StoredReason): boolean {
  if (rule.feature !== reason.feature) return false;
  const v = reason.value;
  if (rule.values !== undefined) return v !== null && rule.values.some((w) => w === v || (typeof w === "number" && typeof v === "string" && String(w) === v));
  if (rule.min !== undefined || rule.max !== undefined) {
    if (typeof v !== "number") return false;
    return (rule.min === undefined || v >= rule.min) && (rule.max === undefined || v <= rule.max);
  }
  return true;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

/** A template with its placeholders filled in (validated when the config loaded: every name is known). */
export function renderTemplate(template: string, fields: Record<TemplateField, string>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => fields[name as TemplateField] ?? "");
}

/** The offer of one member from their stored reasons (highest first). */
export function chooseOffer(
  playbook: Playbook,
  member: { customerId: string; probability: number; band: string },
  reasons: readonly StoredReason[] | null,
  fallbackOffer: string | null,
): OfferChoice {
  const base = { customer_id: member.customerId, probability: member.probability.toFixed(3), band: member.band };
  for (const [k, reason] of (reasons ?? []).entries()) {
    const index = playbook.rules.findIndex((rule) => ruleMatches(rule, reason));
    if (index < 0) continue;
    const rule = playbook.rules[index] as PlaybookRule;
    const value = reason.value === null ? "" : typeof reason.value === "number" ? formatNumber(reason.value) : reason.value;
    const message = renderTemplate(rule.message, { ...base, offer: rule.offer, feature: reason.feature, label: reason.label, value, reason: reason.text });
    return { offer: rule.offer, rule: index + 1, reason: { ...reason, rank: k + 1 }, message };
  }
  const offer = playbook.default_offer ?? fallbackOffer;
  const message =
    playbook.default_message === undefined
      ? null
      : renderTemplate(playbook.default_message, { ...base, offer: offer ?? "", feature: "", label: "", value: "", reason: "" });
  return { offer, rule: null, reason: null, message };
}

/**
 * A playbook's rules checked against the model that scored the run: every rule names one of its reason features,
 * a range only a numeric one, and a category one it knows. Otherwise a rule could never match, silently.
 */
export function checkAgainstModel(
  name: string,
  playbook: Playbook,
  features: readonly ExplainedFeature[],
  categories: ReadonlyMap<string, readonly string[]>,
  model: string,
): void {
  const byName = new Map(features.map((f) => [f.name, f]));
  playbook.rules.forEach((rule, i) => {
    const where = `campaigns.playbooks.${name}.rules[${i}]`;
    const feature = byName.get(rule.feature);
    if (feature === undefined)
      throw new ChurnopsError(
        "bad_config",
        `${where}.feature: ${JSON.stringify(rule.feature)} is not a reason feature of model ${model} (its features: ${features.map((f) => f.name).join(", ")})`,
        { field: "playbook" },
      );
    const numeric = feature.kind !== "categorical";
    if (!numeric && (rule.min !== undefined || rule.max !== undefined))
      throw new ChurnopsError("bad_config", `${where}: ${rule.feature} is categorical; give values = [...] (its categories), not min/max`, {
        field: "playbook",
      });
    for (const v of rule.values ?? []) {
      if (numeric && typeof v !== "number")
        throw new ChurnopsError("bad_config", `${where}.values: ${rule.feature} is numeric; ${JSON.stringify(v)} is not a number (use min/max for a range)`, {
          field: "playbook",
        });
      const known = categories.get(rule.feature);
      if (!numeric && known !== undefined && !known.includes(String(v)))
        throw new ChurnopsError(
          "bad_config",
          `${where}.values: ${JSON.stringify(v)} is not a category of ${rule.feature} (its categories: ${known.join(", ")})`,
          { field: "playbook" },
        );
    }
  });
}

/** What a plan records of its playbook (in the campaign's params, so a re-plan with other rules is refused). */
export function describePlaybook(name: string, playbook: Playbook): Record<string, unknown> {
  return { name, ...playbook };
}

/** The reason features (and categories) of the model that scored a run: what a playbook's rules may name. */
export interface ModelReasons {
  model: string;
  /** null: the model has no contributions (so its runs have no reasons). */
  features: readonly ExplainedFeature[] | null;
  categories: ReadonlyMap<string, readonly string[]>;
}

/** A playbook as a plan uses it: its name in the config, its rules, and how to find the run's model's features. */
export interface PlanPlaybook {
  name: string;
  rules: Playbook;
  modelReasons: (run: { model_name: string; model_version: string }) => Promise<ModelReasons>;
}

/** Refuses, before anything is selected, a playbook the run's model cannot match (see checkAgainstModel). */
export async function checkPlaybook(playbook: PlanPlaybook, run: { run_id: string; model_name: string; model_version: string }): Promise<void> {
  const model = await playbook.modelReasons(run);
  if (model.features === null)
    throw new ChurnopsError(
      "bad_input",
      `--playbook ${playbook.name}: model ${model.model} has no contributions, so run ${run.run_id} has no reasons to choose offers by`,
      { field: "playbook" },
    );
  checkAgainstModel(playbook.name, playbook.rules, model.features, model.categories, model.model);
}

/**
 * Each member's offer (null map without a playbook). A run scored without reasons cannot choose offers by reason:
 * refused, naming the flag that stores them.
 */
export function memberOffers(
  playbook: PlanPlaybook | undefined,
  run: { run_id: string },
  members: readonly { customerId: string; probability: number; band: string }[],
  reasons: ReadonlyMap<string, StoredReason[] | null>,
  fallbackOffer: string | null,
): Map<string, OfferChoice> | null {
  if (playbook === undefined) return null;
  if (members.length > 0 && members.every((m) => (reasons.get(m.customerId) ?? null) === null))
    throw new ChurnopsError(
      "bad_input",
      `--playbook ${playbook.name}: run ${run.run_id} stored no reasons with its scores; score with --reasons N (e.g. 3) to plan a campaign by reason`,
      { field: "playbook" },
    );
  const out = new Map<string, OfferChoice>();
  for (const m of members) out.set(m.customerId, chooseOffer(playbook.rules, m, reasons.get(m.customerId) ?? null, fallbackOffer));
  return out;
}

/** ModelReasons from the registered bundle of the model that scored a run (the CLI's and the daily job's). */
export function registeredModelReasons(config: Config): PlanPlaybook["modelReasons"] {
  return async (run) => {
    const { json } = await readBundle((await resolveBundle({ ...config, model_name: run.model_name }, run.model_version)).bundlePath);
    const categories = new Map(json.schema.features.flatMap((f) => (f.kind === "categorical" ? [[f.name, f.categories] as const] : [])));
    const e = json.explanations;
    return { model: `${run.model_name} v${run.model_version}`, features: e.available ? e.features : null, categories };
  };
}

/** The playbook `--playbook NAME` names in the config, or a clear error listing the ones there are. */
export function configuredPlaybook(config: Config, name: string): PlanPlaybook {
  const rules = config.campaigns.playbooks[name];
  if (rules === undefined) {
    const known = Object.keys(config.campaigns.playbooks);
    throw new ChurnopsError(
      "bad_input",
      `--playbook ${name}: no [campaigns.playbooks.${name}] in the config (${known.length === 0 ? "it defines none" : `it defines ${known.join(", ")}`})`,
      { field: "playbook" },
    );
  }
  return { name, rules, modelReasons: registeredModelReasons(config) };
}
