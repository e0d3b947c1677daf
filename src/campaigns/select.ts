import { ChurnopsError } from "../errors.js";
import type { RiskRule } from "../store/campaigns.js";
import { seededRandom, seedFromText, shuffled } from "./random.js";

export type { RiskRule };

/** The ways to say who is at risk, as the CLI's flags and the daily job's config give them (already parsed). */
export interface RiskSpec {
  minBand?: string | undefined;
  threshold?: number | undefined;
  topPct?: number | undefined;
}

/** The risk rule of at most one of min band, threshold and top pct; none = the model's own decision; null = more than one. */
export function riskRule(spec: RiskSpec): RiskRule | null {
  const given = [spec.minBand, spec.threshold, spec.topPct].filter((x) => x !== undefined).length;
  if (given > 1) return null;
  if (spec.minBand !== undefined) return { kind: "band", band: spec.minBand };
  if (spec.threshold !== undefined) return { kind: "threshold", threshold: spec.threshold };
  if (spec.topPct !== undefined) return { kind: "top_pct", pct: spec.topPct };
  return { kind: "decision" };
}

/** With customer values, customers are ranked by expected value instead of risk. */
export interface ValueModel {
  /** Probability that the offer keeps a customer who would otherwise leave. */
  offerSuccess: number;
  /** What one offer costs. */
  offerCost: number;
}

export interface Candidate {
  customerId: string;
  probability: number;
  band: string;
  modelVersion: string;
  /** Customer value; null when no value source was given or the source had none for this customer. */
  value: number | null;
}

export interface Exclusions {
  cooldown: ReadonlySet<string>;
  optedOut: ReadonlySet<string>;
  churned: ReadonlySet<string>;
}

export interface SelectionOptions {
  /** Most customers to treat (send an offer to); null = everyone eligible. */
  budget: number | null;
  controlShare: number;
  seed: number;
  values: ValueModel | null;
}

export interface Member extends Candidate {
  arm: "treatment" | "control";
  /** 1 = first in the ranking. */
  rank: number;
  expectedValue: number | null;
}

export interface SelectionCounts {
  matchingRule: number;
  excluded: { cooldown: number; opted_out: number; churned: number; no_value: number; not_worth_an_offer: number };
  eligible: number;
  selected: number;
  treated: number;
  control: number;
  byBand: Record<string, { treated: number; control: number }>;
}

export interface Selection {
  members: Member[];
  counts: SelectionCounts;
}

/** Probability × value × offer success − offer cost: what an offer to this customer is worth on average. */
export function expectedValue(probability: number, value: number, model: ValueModel): number {
  return probability * value * model.offerSuccess - model.offerCost;
}

/**
 * Whom to hold out in a selection of `size` customers: `round(size × share)` in total, spread over the bands in
 * proportion (largest remainder), so each band's control share matches the whole's as closely as whole numbers allow.
 */
export function controlQuota(bandSizes: ReadonlyMap<string, number>, share: number): Map<string, number> {
  const total = [...bandSizes.values()].reduce((a, b) => a + b, 0);
  const wanted = Math.round(total * share);
  const quota = new Map<string, number>();
  const remainders: { band: string; rest: number }[] = [];
  let given = 0;
  for (const [band, n] of bandSizes) {
    const exact = n * share;
    const floor = Math.floor(exact);
    quota.set(band, floor);
    given += floor;
    remainders.push({ band, rest: exact - floor });
  }
  remainders.sort((a, b) => b.rest - a.rest || a.band.localeCompare(b.band));
  for (let i = 0; given < wanted && i < remainders.length; i++, given++) {
    const band = (remainders[i] as { band: string }).band;
    quota.set(band, (quota.get(band) ?? 0) + 1);
  }
  return quota;
}

/** The most customers to select so that, after the control group is held out, at most `budget` are treated. */
export function selectionSize(eligible: number, budget: number | null, share: number): number {
  if (budget === null || eligible === 0) return eligible;
  let k = Math.min(eligible, Math.floor(budget / (1 - share)) + 1);
  while (k > 0 && k - Math.round(k * share) > budget) k--;
  return k;
}

/** A control share is a fraction strictly between 0 and 1. */
export function checkControlShare(share: number): void {
  if (!(share > 0 && share < 1)) throw new ChurnopsError("bad_input", `the control share must be between 0 and 1 (got ${share})`, { field: "control-share" });
}

export type ExcludedCounts = SelectionCounts["excluded"];

export function noneExcluded(): ExcludedCounts {
  return { cooldown: 0, opted_out: 0, churned: 0, no_value: 0, not_worth_an_offer: 0 };
}

/**
 * Whether a candidate cannot be in any campaign: opted out, churned, in cooldown, or (when customers are ranked by
 * value) without a value, the first that applies counted in `excluded`.
 */
export function excludedBy(c: Candidate, exclusions: Exclusions, needsValue: boolean, excluded: ExcludedCounts): boolean {
  if (exclusions.optedOut.has(c.customerId)) excluded.opted_out++;
  else if (exclusions.churned.has(c.customerId)) excluded.churned++;
  else if (exclusions.cooldown.has(c.customerId)) excluded.cooldown++;
  else if (needsValue && c.value === null) excluded.no_value++;
  else return false;
  return true;
}

/** Counts a member in its band's arm. */
export function tallyBand(byBand: SelectionCounts["byBand"], band: string, arm: Member["arm"]): void {
  const tally = byBand[band] ?? { treated: 0, control: 0 };
  if (arm === "control") tally.control++;
  else tally.treated++;
  byBand[band] = tally;
}

/** A selection's counts from its members (the arms summed over the members). */
export function selectionCounts(
  matchingRule: number,
  excluded: ExcludedCounts,
  eligible: number,
  members: readonly Pick<Member, "arm">[],
  byBand: SelectionCounts["byBand"],
): SelectionCounts {
  const treated = members.filter((m) => m.arm === "treatment").length;
  return { matchingRule, excluded, eligible, selected: members.length, treated, control: members.length - treated, byBand };
}

/**
 * Turn the customers that match the risk rule into a campaign: drop the ineligible (cooldown, opt-out, churned,
 * and, when ranking by value, those without a value or whose offer is worth nothing), rank, cut at the budget,
 * and split into treatment and a seeded control group stratified by risk band. Pure: same input, same output.
 */
export function selectMembers(candidates: readonly Candidate[], exclusions: Exclusions, options: SelectionOptions): Selection {
  checkControlShare(options.controlShare);
  const excluded = noneExcluded();
  const eligible: (Candidate & { expectedValue: number | null })[] = [];
  for (const c of candidates) {
    if (!excludedBy(c, exclusions, options.values !== null, excluded)) {
      const ev = options.values === null || c.value === null ? null : expectedValue(c.probability, c.value, options.values);
      if (ev !== null && ev <= 0) excluded.not_worth_an_offer++;
      else eligible.push({ ...c, expectedValue: ev });
    }
  }
  eligible.sort(
    (a, b) =>
      (b.expectedValue ?? 0) - (a.expectedValue ?? 0) ||
      b.probability - a.probability ||
      (a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0),
  );
  const selected = eligible.slice(0, selectionSize(eligible.length, options.budget, options.controlShare));

  const byBandMembers = new Map<string, typeof selected>();
  for (const c of selected) {
    const list = byBandMembers.get(c.band) ?? [];
    list.push(c);
    byBandMembers.set(c.band, list);
  }
  const quota = controlQuota(new Map([...byBandMembers].map(([band, list]) => [band, list.length])), options.controlShare);
  const control = new Set<string>();
  for (const [band, list] of byBandMembers) {
    // One independent stream per band, so adding a band does not reshuffle the others.
    const random = seededRandom((options.seed ^ seedFromText(band)) >>> 0);
    const picked = shuffled(
      list.map((c) => c.customerId),
      random,
    ).slice(0, quota.get(band) ?? 0);
    for (const id of picked) control.add(id);
  }
  const byBand: Record<string, { treated: number; control: number }> = {};
  const members: Member[] = selected.map((c, i) => {
    const arm = control.has(c.customerId) ? "control" : "treatment";
    tallyBand(byBand, c.band, arm);
    return { ...c, arm, rank: i + 1 };
  });
  return { members, counts: selectionCounts(candidates.length, excluded, eligible.length, members, byBand) };
}

export function describeRule(rule: RiskRule): string {
  switch (rule.kind) {
    case "band":
      return `risk band ${rule.band} or higher`;
    case "threshold":
      return `probability ≥ ${rule.threshold}`;
    case "top_pct":
      return `top ${rule.pct}% by risk`;
    case "decision":
      return "the model's operating decision (probability ≥ its threshold)";
  }
}
