import { requireCampaign } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { type ArmOutcome, armOutcomes } from "../store/outcomes.js";
import { type OfferEffect, offerBreakdown } from "./offer-report.js";
import { fisherExact, newcombeInterval, riskRatioInterval, sampleSizeTwoProportions, twoProportionZTest } from "./stats.js";
import { type UpliftReport, upliftReport } from "./uplift-report.js";

export interface ArmSummary {
  members: number;
  /** Members whose outcome is known (observed after the campaign's score date). */
  observed: number;
  churned: number;
  churnRate: number | null;
}

export type Verdict = "works" | "harms" | "no_effect" | "no_evidence_yet";

export interface EffectReport {
  campaign: string;
  asOf: string;
  modelVersion: string;
  treatment: ArmSummary;
  control: ArmSummary;
  /** Control churn rate − treatment churn rate: positive = the campaign kept customers. */
  absoluteReduction: number | null;
  absoluteReductionCi95: [number, number] | null;
  /** Absolute reduction / control churn rate. */
  relativeReduction: number | null;
  relativeReductionCi95: [number, number] | null;
  test: "two-proportion z-test" | "Fisher's exact test" | null;
  z: number | null;
  pValue: number | null;
  /** Treated customers (with outcomes) who stayed because of the offer, with the interval carried over. */
  customersRetained: { estimate: number; ci95: [number, number] } | null;
  revenueRetained: { estimate: number; ci95: [number, number] } | null;
  offerCostTotal: number | null;
  verdict: Verdict;
  message: string;
  /** Customers with outcomes needed per arm to detect `effect` (α 0.05 two-sided, power 0.8). */
  sampleNeeded: { control: number; treatment: number; effect: number } | null;
  /** Per playbook offer (campaigns planned with --playbook; absent otherwise): churn per arm and the reduction. */
  byOffer?: OfferEffect[] | undefined;
  /** Campaigns planned with `--rank-by uplift`: realised uplift by predicted decile, predicted vs realised. */
  uplift?: UpliftReport | null;
}

export interface EffectInput {
  treatment: ArmOutcome;
  control: ArmOutcome;
  /** Smallest absolute reduction worth detecting (sizes the "sample needed" advice). */
  minEffect: number;
  offerCost: number | null;
  alpha?: number;
}

function arm(o: ArmOutcome): ArmSummary {
  return { members: o.members, observed: o.observed, churned: o.churned, churnRate: o.observed > 0 ? o.churned / o.observed : null };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Fisher's exact test whenever a cell's expected count under H0 is below 5, where the z-test's normal approximation fails. */
function smallTable(xt: number, nt: number, xc: number, nc: number): boolean {
  const n = nt + nc;
  const events = xt + xc;
  return Math.min(nt, nc) * Math.min(events, n - events) < 5 * n;
}

/** The effect of a campaign from its arms' outcomes: pure, so it can be checked against known truths. */
export function analyzeEffect(input: EffectInput): Omit<EffectReport, "campaign" | "asOf" | "modelVersion"> {
  const alpha = input.alpha ?? 0.05;
  const t = arm(input.treatment);
  const c = arm(input.control);
  const base = {
    treatment: t,
    control: c,
    offerCostTotal: input.offerCost === null ? null : input.offerCost * input.treatment.members,
  };
  if (t.churnRate === null || c.churnRate === null) {
    return {
      ...base,
      absoluteReduction: null,
      absoluteReductionCi95: null,
      relativeReduction: null,
      relativeReductionCi95: null,
      test: null,
      z: null,
      pValue: null,
      customersRetained: null,
      revenueRetained: null,
      verdict: "no_evidence_yet",
      message: `no evidence yet: no outcomes recorded after the campaign for the ${[t.churnRate === null ? "treatment" : "", c.churnRate === null ? "control" : ""].filter(Boolean).join(" and ")} group (ingest them with \`churnops outcomes ingest\`)`,
      sampleNeeded: null,
    };
  }
  const { churned: xt, observed: nt } = t;
  const { churned: xc, observed: nc } = c;
  const reduction = c.churnRate - t.churnRate;
  const ci = newcombeInterval(xc, nc, xt, nt, 1 - alpha);
  const rr = riskRatioInterval(xt, nt, xc, nc, 1 - alpha);
  const useFisher = smallTable(xt, nt, xc, nc);
  const z = useFisher ? null : twoProportionZTest(xc, nc, xt, nt);
  const pValue = useFisher ? fisherExact(xt, nt - xt, xc, nc - xc) : (z as { pValue: number }).pValue;
  const valuePerCustomer = input.treatment.observedValue === null || nt === 0 ? null : input.treatment.observedValue / nt;
  const effect = Math.max(reduction, input.minEffect);
  const target = Math.max(0, c.churnRate - effect);
  const needed = sampleSizeTwoProportions(c.churnRate, target, nc > 0 ? nt / nc : 1, alpha, 0.8);
  const enough = nc >= needed.control && nt >= needed.treatment;
  let verdict: Verdict;
  let message: string;
  if (pValue < alpha && reduction > 0) {
    verdict = "works";
    message = `the campaign works: churn ${pct(t.churnRate)} treated vs ${pct(c.churnRate)} control, ${pct(reduction)} lower (95% CI ${pct(ci[0])} to ${pct(ci[1])}, p = ${pValue.toPrecision(2)})`;
  } else if (pValue < alpha) {
    verdict = "harms";
    message = `the campaign raises churn: ${pct(t.churnRate)} treated vs ${pct(c.churnRate)} control (p = ${pValue.toPrecision(2)})`;
  } else if (enough) {
    verdict = "no_effect";
    message = `no effect found: with ${nt} treated and ${nc} control customers, the reduction is at most ${pct(ci[1])} (95% CI ${pct(ci[0])} to ${pct(ci[1])}, p = ${pValue.toPrecision(2)})`;
  } else {
    verdict = "no_evidence_yet";
    message = `no evidence yet: ${nt} treated and ${nc} control customers have outcomes; detecting a ${pct(effect)} reduction needs about ${needed.treatment} treated and ${needed.control} control (p = ${pValue.toPrecision(2)})`;
  }
  return {
    ...base,
    absoluteReduction: reduction,
    absoluteReductionCi95: ci,
    relativeReduction: c.churnRate > 0 ? reduction / c.churnRate : null,
    relativeReductionCi95: rr === null ? null : [1 - rr[1], 1 - rr[0]],
    test: useFisher ? "Fisher's exact test" : "two-proportion z-test",
    z: z?.z ?? null,
    pValue,
    customersRetained: { estimate: reduction * nt, ci95: [ci[0] * nt, ci[1] * nt] },
    revenueRetained:
      valuePerCustomer === null ? null : { estimate: reduction * nt * valuePerCustomer, ci95: [ci[0] * nt * valuePerCustomer, ci[1] * nt * valuePerCustomer] },
    verdict,
    message,
    sampleNeeded: verdict === "no_evidence_yet" || verdict === "no_effect" ? { ...needed, effect } : null,
  };
}

/** The effect report of a stored campaign, from the outcomes observed after its score date. */
export async function campaignReport(store: Store, name: string, minEffect: number): Promise<EffectReport> {
  const campaign = await requireCampaign(store, name);
  const [treatment, control] = await armOutcomes(store, name, campaign.as_of);
  const analysis = analyzeEffect({
    treatment: treatment as ArmOutcome,
    control: control as ArmOutcome,
    minEffect,
    offerCost: campaign.offer_cost,
  });
  const byOffer = await offerBreakdown(store, campaign, minEffect);
  const uplift = campaign.ranking === "uplift" ? { uplift: await upliftReport(store, campaign) } : {};
  return { campaign: name, asOf: campaign.as_of, modelVersion: campaign.model_version, ...analysis, ...(byOffer === null ? {} : { byOffer }), ...uplift };
}
