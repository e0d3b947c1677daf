import type { ScoreRun } from "../store/runs.js";
import type { CampaignUpliftRow } from "../store/uplift.js";
import type { UpliftScores } from "../uplift/score.js";
import type { Candidate, Exclusions, Selection } from "./select.js";
import { selectUpliftMembers, type UpliftCounts, type UpliftMember } from "./uplift-select.js";

/** `campaign plan --rank-by uplift`: where predicted uplift comes from and how much of the budget explores. */
export interface UpliftPlanSource {
  /** The uplift model asked for (an alias or a version of `modelName`), recorded with the plan's settings. */
  modelName: string;
  model: string;
  /** Share of the treated chosen at random among the eligible (default 0.1). */
  explorationShare: number;
  scores: (run: ScoreRun) => Promise<UpliftScores>;
}

/** A selection made by uplift: the members carry their predicted uplift, and the model version that predicted it. */
export interface UpliftSelection extends Selection {
  members: UpliftMember[];
  counts: UpliftCounts;
  upliftModel: { name: string; version: string };
}

export function isUpliftSelection(selection: Selection): selection is UpliftSelection {
  return "upliftModel" in selection;
}

/** The plan's recorded settings for uplift ranking (a re-plan with other settings is refused). */
export function upliftParams(source: UpliftPlanSource): Record<string, unknown> {
  return { model_name: source.modelName, model: source.model, exploration_share: source.explorationShare };
}

export async function upliftSelection(
  run: ScoreRun,
  candidates: readonly Candidate[],
  exclusions: Exclusions,
  request: { budget: number | null; controlShare: number; values?: { offerCost: number } | undefined; uplift?: UpliftPlanSource | undefined },
  seed: number,
  notes: string[],
): Promise<UpliftSelection> {
  const source = request.uplift as UpliftPlanSource;
  const scores = await source.scores(run);
  const selection = selectUpliftMembers(
    candidates.map((c) => ({ ...c, uplift: scores.uplift.get(c.customerId) ?? null })),
    exclusions,
    {
      budget: request.budget,
      controlShare: request.controlShare,
      explorationShare: source.explorationShare,
      seed,
      offerCost: request.values?.offerCost ?? 0,
      withValues: request.values !== undefined,
    },
  );
  const c = selection.counts;
  notes.push(`uplift model ${scores.modelName} v${scores.modelVersion}: ${c.sleepingDogs} sleeping dogs (negative predicted uplift) held back, never treated`);
  notes.push(
    `exploration ${c.exploration.treated} treated + ${c.exploration.control} control at random among the eligible; ranking ${c.ranking.treated} + ${c.ranking.control}`,
  );
  if (c.noUplift > 0) notes.push(`${c.noUplift} eligible customers have no predicted uplift (not in the run's snapshot) and were left out`);
  return { ...selection, upliftModel: { name: scores.modelName, version: scores.modelVersion } };
}

/** The rows of campaign_uplift_members for a plan (none unless it was made by uplift). */
export function upliftRows(campaign: string, selection: Selection): CampaignUpliftRow[] {
  if (!isUpliftSelection(selection)) return [];
  return selection.members.map((m) => ({
    campaign,
    customer_id: m.customerId,
    uplift: m.uplift,
    uplift_model_name: selection.upliftModel.name,
    uplift_model_version: selection.upliftModel.version,
    selected_by: m.selectedBy,
  }));
}
