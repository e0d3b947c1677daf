import type { Store } from "./db.js";
import { type ArmOutcome, armOutcomeGroups, noOutcome } from "./outcomes.js";

/** One offer's arms (migration 025's campaign_members.offer; null = members without an offer). */
export interface OfferArms {
  offer: string | null;
  treatment: ArmOutcome;
  control: ArmOutcome;
}

/**
 * armOutcomes per playbook offer: each member's offer was chosen from their reasons before the random hold-out, so
 * within an offer the control members are the treated members' counterfactual. Offers in order of their size.
 */
export async function offerArmOutcomes(store: Store, campaign: string, asOf: string): Promise<OfferArms[]> {
  const offers = new Map<string | null, OfferArms>();
  for (const { offer, outcome } of await armOutcomeGroups(store, campaign, asOf, { byOffer: true })) {
    let entry = offers.get(offer);
    if (entry === undefined) {
      entry = { offer, treatment: noOutcome("treatment"), control: noOutcome("control") };
      offers.set(offer, entry);
    }
    entry[outcome.arm] = outcome;
  }
  const size = (o: OfferArms): number => o.treatment.members + o.control.members;
  return [...offers.values()].sort((a, b) => size(b) - size(a) || String(a.offer ?? "\uffff").localeCompare(String(b.offer ?? "\uffff")));
}
