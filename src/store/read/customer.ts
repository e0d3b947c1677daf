import { z } from "zod";
import type { Store } from "../db.js";

export const customerScoreSchema = z.object({
  run_id: z.string(),
  as_of: z.string(),
  kind: z.string(),
  probability: z.number(),
  band: z.string(),
  decision: z.coerce.number(),
  model_version: z.string(),
});
export type CustomerScore = z.infer<typeof customerScoreSchema>;

export const membershipSchema = z.object({
  campaign: z.string(),
  arm: z.enum(["treatment", "control"]),
  planned_at: z.string(),
  probability: z.number(),
  /** The outbox state of the offer; null for the control arm, which gets none. */
  message_state: z.string().nullable(),
  delivered_at: z.string().nullable(),
});
export type Membership = z.infer<typeof membershipSchema>;

export const outcomeSchema = z.object({ observed_at: z.string(), churned: z.coerce.number(), source: z.string() });

export interface BandChange {
  as_of: string;
  from: string;
  to: string;
}

export interface CustomerView {
  customerId: string;
  /** Oldest first. */
  scores: CustomerScore[];
  bandChanges: BandChange[];
  memberships: Membership[];
  outcome: z.infer<typeof outcomeSchema> | null;
  optedOut: boolean;
}

/** A customer across runs, campaigns and outcomes; null when the store has never seen the id. */
export async function customerView(store: Store, customerId: string): Promise<CustomerView | null> {
  const [scores, memberships, outcome, optOut] = await Promise.all([
    // Runs first, then one key seek per run (CROSS JOIN keeps that order in SQLite): scores have no index by
    // customer alone (migration 020).
    store.db
      .selectFrom("score_runs as r")
      .crossJoin("scores as s")
      .select(["s.run_id", "r.as_of", "r.kind", "s.probability", "s.band", "s.decision", "s.model_version"])
      .whereRef("s.run_id", "=", "r.run_id")
      .where("s.customer_id", "=", customerId)
      .orderBy("r.as_of")
      .orderBy("r.started_at")
      .execute(),
    store.db
      .selectFrom("campaign_members as m")
      .leftJoin("campaign_messages as o", (j) => j.onRef("o.campaign", "=", "m.campaign").onRef("o.customer_id", "=", "m.customer_id"))
      .select(["m.campaign", "m.arm", "m.planned_at", "m.probability", "o.state as message_state", "o.delivered_at"])
      .where("m.customer_id", "=", customerId)
      .orderBy("m.planned_at", "desc")
      .execute(),
    store.db.selectFrom("outcomes").select(["observed_at", "churned", "source"]).where("customer_id", "=", customerId).executeTakeFirst(),
    store.db.selectFrom("opt_outs").select("customer_id").where("customer_id", "=", customerId).executeTakeFirst(),
  ]);
  if (scores.length === 0 && memberships.length === 0 && outcome === undefined) return null;
  const history = scores.map((s) => customerScoreSchema.parse(s));
  const bandChanges: BandChange[] = [];
  for (let i = 1; i < history.length; i++) {
    const [before, after] = [history[i - 1] as CustomerScore, history[i] as CustomerScore];
    if (before.band !== after.band) bandChanges.push({ as_of: after.as_of, from: before.band, to: after.band });
  }
  return {
    customerId,
    scores: history,
    bandChanges,
    memberships: memberships.map((m) => membershipSchema.parse(m)),
    outcome: outcome === undefined ? null : outcomeSchema.parse(outcome),
    optedOut: optOut !== undefined,
  };
}
