import { armCounts, requireCampaign } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { deadLetters, type MessageState, messageStateCounts } from "../store/outbox.js";
import type { SelectionCounts } from "./select.js";

export interface CampaignStatus {
  campaign: string;
  run_id: string;
  as_of: string;
  model: string;
  rule: string;
  ranking: string;
  seed: number;
  planned_at: string;
  treated: number;
  control: number;
  /** Outbox messages per state (treated members only; the control group has none). */
  messages: Record<MessageState, number>;
  pending: number;
  sending: number;
  delivered: number;
  dead: number;
  selection: SelectionCounts;
  dead_letters: { customer_id: string; attempts: number; last_error: string | null }[];
}

/** Where a campaign stands: its arms and its outbox, per message state, with the first dead letters. */
export async function campaignStatus(store: Store, name: string): Promise<CampaignStatus> {
  const campaign = await requireCampaign(store, name);
  const arms = await armCounts(store, name);
  const messages = await messageStateCounts(store, name);
  const dead = await deadLetters(store, name, 20);
  return {
    campaign: name,
    run_id: campaign.run_id,
    as_of: campaign.as_of,
    model: `${campaign.model_name} v${campaign.model_version}`,
    rule: (JSON.parse(campaign.params) as { rule: string }).rule,
    ranking: campaign.ranking,
    seed: campaign.seed,
    planned_at: campaign.planned_at,
    treated: arms.treated,
    control: arms.control,
    messages,
    ...messages,
    selection: JSON.parse(campaign.counts) as SelectionCounts,
    dead_letters: dead.map((d) => ({ customer_id: d.customer_id, attempts: d.attempts, last_error: d.last_error })),
  };
}
