import { z } from "zod";
import type { PlanRequest } from "../campaigns/plan.js";
import type { RiskRule } from "../campaigns/select.js";
import type { UpliftPlanSource } from "../campaigns/uplift-plan.js";
import type { CampaignsConfig } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { parseInput } from "./forms.js";

export const RULE_KINDS = ["decision", "band", "threshold", "top_pct"] as const;
export const RANKINGS = ["risk", "expected_value", "uplift"] as const;

const number = (field: string, min: number, max: number, exclusiveMin = false) => {
  const message = `${field}: expected a number ${exclusiveMin ? "above" : "from"} ${min} to ${max}`;
  const base = z.coerce.number({ error: message }).max(max, message);
  return exclusiveMin ? base.gt(min, message) : base.min(min, message);
};
const whole = (field: string, min: number, max: number) => {
  const message = `${field}: expected a whole number from ${min} to ${max}`;
  return z.coerce.number({ error: message }).int(message).min(min, message).max(max, message);
};

/**
 * The campaign builder's fields, as the form posts them (empty fields already dropped). The same settings as
 * `churnops campaign plan`, with the same bounds; values for expected-value ranking come only from the file the
 * run scored, so a web form never names a path on the server.
 */
export const campaignFormSchema = z
  .object({
    name: z.string().max(128).default(""),
    run: z.string().min(1).max(200).default("latest"),
    rule: z.enum(RULE_KINDS, { error: `rule: expected one of ${RULE_KINDS.join(", ")}` }).default("decision"),
    band: z.string().max(64).optional(),
    threshold: number("threshold", 0, 1).optional(),
    top_pct: number("top_pct", 0, 100, true).optional(),
    budget: whole("budget", 1, 100_000_000).optional(),
    control_share: number("control_share", 0, 0.99, true).optional(),
    cooldown_days: whole("cooldown_days", 0, 3650).optional(),
    seed: whole("seed", 0, 4_294_967_295).optional(),
    ranking: z.enum(RANKINGS, { error: `ranking: expected one of ${RANKINGS.join(", ")}` }).default("risk"),
    value_column: z.string().max(200).optional(),
    offer_cost: number("offer_cost", 0, Number.MAX_VALUE).optional(),
    offer_success: number("offer_success", 0, 1, true).optional(),
    exploration_share: number("exploration_share", 0, 0.9).optional(),
    offer: z.string().max(500).optional(),
  })
  .superRefine((f, ctx) => {
    const need = (field: keyof typeof f, message: string) => {
      if (f[field] === undefined) ctx.addIssue({ code: "custom", path: [field], message: `${field}: ${message}` });
    };
    if (f.rule === "band") need("band", "choose the lowest risk band to include");
    if (f.rule === "threshold") need("threshold", "give the lowest churn probability to include (0 to 1)");
    if (f.rule === "top_pct") need("top_pct", "give the share of the riskiest customers to include (above 0, at most 100)");
    if (f.ranking === "expected_value") {
      need("value_column", "ranking by expected value needs the column of the run's input that holds each customer's value");
      need("offer_success", "ranking by expected value needs the share of would-be churners an offer keeps (above 0, at most 1)");
    }
  });
export type CampaignForm = z.infer<typeof campaignFormSchema>;

export function parseCampaignForm(fields: Record<string, string>): CampaignForm {
  return parseInput(campaignFormSchema, fields);
}

function ruleOf(f: CampaignForm): RiskRule {
  switch (f.rule) {
    case "band":
      return { kind: "band", band: f.band as string };
    case "threshold":
      return { kind: "threshold", threshold: f.threshold as number };
    case "top_pct":
      return { kind: "top_pct", pct: f.top_pct as number };
    case "decision":
      return { kind: "decision" };
  }
}

/** The plan request a form stands for, with the config's defaults where a field was left empty. */
export function planRequestOf(
  f: CampaignForm,
  defaults: CampaignsConfig,
  modelBands: PlanRequest["modelBands"],
  uplift?: (explorationShare: number) => UpliftPlanSource,
): PlanRequest {
  if (f.ranking === "uplift" && uplift === undefined)
    throw new ChurnopsError("bad_input", "ranking: uplift ranking needs a registered uplift model (churnops uplift train)", { field: "ranking" });
  return {
    name: f.name,
    run: f.run,
    rule: ruleOf(f),
    budget: f.budget ?? null,
    controlShare: f.control_share ?? defaults.control_share,
    cooldownDays: f.cooldown_days ?? defaults.cooldown_days,
    seed: f.seed,
    offer: f.offer,
    values:
      f.ranking === "expected_value" || (f.ranking === "uplift" && f.value_column !== undefined)
        ? {
            source: null,
            idColumn: "customer_id",
            valueColumn: f.value_column as string,
            offerCost: f.offer_cost ?? 0,
            offerSuccess: f.ranking === "uplift" ? 1 : (f.offer_success as number),
          }
        : undefined,
    modelBands,
    uplift: f.ranking === "uplift" && uplift !== undefined ? uplift(f.exploration_share ?? 0.1) : undefined,
  };
}
