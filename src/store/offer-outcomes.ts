import { sql } from "kysely";
import type { Store } from "./db.js";
import { type ArmOutcome, churnAfter } from "./outcomes.js";

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
  const latest = churnAfter(store, asOf).as("o");
  const rows = await store.db
    .selectFrom("campaign_members as m")
    .leftJoin(latest, "o.customer_id", "m.customer_id")
    .select([
      "m.offer",
      "m.arm",
      (eb) => eb.fn.countAll<number>().as("members"),
      (eb) => eb.fn.count<number>("o.customer_id").as("observed"),
      sql<number>`coalesce(sum(o.churned), 0)`.as("churned"),
      sql<number | null>`sum(case when o.customer_id is not null then m.value end)`.as("observed_value"),
    ])
    .where("m.campaign", "=", campaign)
    .groupBy(["m.offer", "m.arm"])
    .execute();
  const offers = new Map<string | null, OfferArms>();
  const empty = (arm: "treatment" | "control"): ArmOutcome => ({ arm, members: 0, observed: 0, churned: 0, observedValue: null });
  for (const r of rows) {
    const offer = r.offer ?? null;
    let entry = offers.get(offer);
    if (entry === undefined) {
      entry = { offer, treatment: empty("treatment"), control: empty("control") };
      offers.set(offer, entry);
    }
    entry[r.arm] = {
      arm: r.arm,
      members: Number(r.members),
      observed: Number(r.observed),
      churned: Number(r.churned),
      observedValue: r.observed_value === null || r.observed_value === undefined ? null : Number(r.observed_value),
    };
  }
  const size = (o: OfferArms): number => o.treatment.members + o.control.members;
  return [...offers.values()].sort((a, b) => size(b) - size(a) || String(a.offer ?? "\uffff").localeCompare(String(b.offer ?? "\uffff")));
}
