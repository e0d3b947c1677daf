import { ChurnopsError } from "../errors.js";
import { seededRandom, seedFromText, shuffled } from "./random.js";
import {
  type Candidate,
  checkControlShare,
  type Exclusions,
  excludedBy,
  type Member,
  noneExcluded,
  type SelectionCounts,
  selectionCounts,
  selectionSize,
  tallyBand,
} from "./select.js";

/** How uplift targeting spends a budget (issue 19, docs/uplift.md). */
export interface UpliftOptions {
  /** Most customers to treat; null = every eligible customer worth an offer. */
  budget: number | null;
  controlShare: number;
  /** Share of the treated chosen at random among all eligible customers (default 0.1). */
  explorationShare: number;
  seed: number;
  /** What one offer costs; with customer values, net value = uplift × value − cost. */
  offerCost: number;
  /** Whether candidates carry customer values (then a customer without one is excluded). */
  withValues: boolean;
}

export interface UpliftCandidate extends Candidate {
  /** Predicted reduction in churn probability if treated (the uplift model's output). */
  uplift: number | null;
}

export interface UpliftMember extends Member {
  uplift: number;
  selectedBy: "ranking" | "exploration";
}

export interface UpliftCounts extends SelectionCounts {
  /** Eligible customers with a negative predicted uplift ("sleeping dogs": an offer would make them likelier to leave): never treated. */
  sleepingDogs: number;
  /** Eligible customers the uplift model could not score (not in the scored table): excluded. */
  noUplift: number;
  exploration: { treated: number; control: number };
  ranking: { treated: number; control: number };
}

/** Net value of an offer: uplift × customer value − offer cost, or the uplift itself without values. */
export function upliftNetValue(uplift: number, value: number | null, offerCost: number): number {
  return value === null ? uplift - offerCost : uplift * value - offerCost;
}

/** round(n × share) held out of `ids`, at random from a stream of its own. */
function holdOut(ids: readonly string[], share: number, seed: number): Set<string> {
  return new Set(shuffled(ids, seededRandom(seed)).slice(0, Math.round(ids.length * share)));
}

/**
 * Uplift targeting. After the usual exclusions (opt-out, churned, cooldown, no value), two groups, each with
 * its own seeded random control group of `controlShare`:
 *
 * - exploration: `explorationShare` of the treated, drawn at random among the eligible customers whatever their
 *   expected value (but never a sleeping dog), so that future training data is not confined to whom the model
 *   already likes;
 * - ranking: the rest of the budget, by expected net value (uplift × value − offer cost), highest first, among
 *   customers with a positive predicted uplift and a positive net value.
 *
 * Customers with a negative predicted uplift ("sleeping dogs") are never treated, by either group, and are counted.
 *
 * Pure: same input, same output.
 */
export function selectUpliftMembers(
  candidates: readonly UpliftCandidate[],
  exclusions: Exclusions,
  options: UpliftOptions,
): { members: UpliftMember[]; counts: UpliftCounts } {
  checkControlShare(options.controlShare);
  if (!(options.explorationShare >= 0 && options.explorationShare < 1))
    throw new ChurnopsError("bad_input", `the exploration share must be from 0 to below 1 (got ${options.explorationShare})`, { field: "exploration-share" });
  const excluded = noneExcluded();
  let noUplift = 0;
  const eligible: (UpliftCandidate & { uplift: number; net: number })[] = [];
  for (const c of candidates) {
    if (excludedBy(c, exclusions, options.withValues, excluded)) continue;
    if (c.uplift === null || !Number.isFinite(c.uplift)) noUplift++;
    else eligible.push({ ...c, uplift: c.uplift, net: upliftNetValue(c.uplift, c.value, options.offerCost) });
  }
  const byId = (a: { customerId: string }, b: { customerId: string }) => (a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0);
  eligible.sort(byId);
  const worth = eligible.filter((c) => c.uplift > 0 && c.net > 0);
  const sleepingDogs = eligible.filter((c) => c.uplift < 0).length;
  const explorable = eligible.filter((c) => c.uplift >= 0);
  excluded.not_worth_an_offer = eligible.filter((c) => c.uplift > 0 && c.net <= 0).length;

  // Treated budget split: exploration first (a share of what will be treated), then ranking.
  const rankingCapacity = worth.length;
  const totalTreated = options.budget === null ? Math.round(rankingCapacity / (1 - options.explorationShare)) : options.budget;
  const exploreTreated = Math.round(totalTreated * options.explorationShare);
  const exploreSize = Math.min(explorable.length, exploreTreated === 0 ? 0 : Math.floor(exploreTreated / (1 - options.controlShare)));
  const explore = shuffled(explorable, seededRandom((options.seed ^ seedFromText("exploration")) >>> 0)).slice(0, exploreSize);
  const explored = new Set(explore.map((c) => c.customerId));
  const exploreControl = holdOut(
    explore.map((c) => c.customerId),
    options.controlShare,
    (options.seed ^ seedFromText("exploration-control")) >>> 0,
  );
  const exploreTreatedN = explore.length - exploreControl.size;

  const ranked = worth.filter((c) => !explored.has(c.customerId)).sort((a, b) => b.net - a.net || b.uplift - a.uplift || byId(a, b));
  const rankingTreatedWanted = Math.max(0, totalTreated - exploreTreatedN);
  const chosen = ranked.slice(0, selectionSize(ranked.length, rankingTreatedWanted, options.controlShare));
  const rankingControl = holdOut(
    chosen.map((c) => c.customerId),
    options.controlShare,
    (options.seed ^ seedFromText("ranking-control")) >>> 0,
  );

  const byBand: Record<string, { treated: number; control: number }> = {};
  const members: UpliftMember[] = [];
  const add = (c: (typeof eligible)[number], control: boolean, selectedBy: UpliftMember["selectedBy"]) => {
    const arm = control ? "control" : "treatment";
    tallyBand(byBand, c.band, arm);
    members.push({
      customerId: c.customerId,
      probability: c.probability,
      band: c.band,
      modelVersion: c.modelVersion,
      value: c.value,
      arm,
      rank: members.length + 1,
      expectedValue: c.value === null ? null : c.net,
      uplift: c.uplift,
      selectedBy,
    });
  };
  for (const c of chosen) add(c, rankingControl.has(c.customerId), "ranking");
  for (const c of [...explore].sort(byId)) add(c, exploreControl.has(c.customerId), "exploration");
  return {
    members,
    counts: {
      ...selectionCounts(candidates.length, excluded, eligible.length, members, byBand),
      sleepingDogs,
      noUplift,
      exploration: { treated: exploreTreatedN, control: exploreControl.size },
      ranking: { treated: chosen.length - rankingControl.size, control: rankingControl.size },
    },
  };
}
