import type { Store } from "../store/db.js";
import { offerArmOutcomes } from "../store/offer-outcomes.js";
import { type ArmSummary, analyzeEffect } from "./report.js";

/** The effect of one playbook offer: its arms, the reduction with Newcombe's 95% interval, and the test's p-value. */
export interface OfferEffect {
  /** null: members who got no offer (no rule matched and no default). */
  offer: string | null;
  treatment: ArmSummary;
  control: ArmSummary;
  absoluteReduction: number | null;
  absoluteReductionCi95: [number, number] | null;
  test: string | null;
  pValue: number | null;
  verdict: string;
}

/**
 * `campaign report`'s break-down by offer, for a campaign planned with a playbook (null otherwise): the same
 * analysis as the whole campaign's (src/campaigns/report.ts, stats.ts), within each offer's members.
 */
export async function offerBreakdown(
  store: Store,
  campaign: { name: string; as_of: string; params: string },
  minEffect: number,
): Promise<OfferEffect[] | null> {
  const params = JSON.parse(campaign.params) as { playbook?: unknown };
  if (params.playbook === undefined) return null;
  return (await offerArmOutcomes(store, campaign.name, campaign.as_of)).map((o) => {
    const a = analyzeEffect({ treatment: o.treatment, control: o.control, minEffect, offerCost: null });
    return {
      offer: o.offer,
      treatment: a.treatment,
      control: a.control,
      absoluteReduction: a.absoluteReduction,
      absoluteReductionCi95: a.absoluteReductionCi95,
      test: a.test,
      pValue: a.pValue,
      verdict: a.verdict,
    };
  });
}
