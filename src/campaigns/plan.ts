import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { openSource, type SourceSpec } from "../data/source.js";
import { addDays } from "../days.js";
import { ChurnopsError } from "../errors.js";
import type { Band } from "../model/bundle.js";
import { type CampaignMemberRow, type CampaignRow, getCampaign, insertPlan, type NewMessage, scoredCustomers, treatedAfter } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { churnedBy, optedOut } from "../store/outcomes.js";
import { runReasons } from "../store/read/customer-reasons.js";
import { requireScores, resolveRun, type ScoreRun } from "../store/runs.js";
import { checkPlaybook, memberOffers, type PlanPlaybook } from "./playbook.js";
import { seedFromText } from "./random.js";
import { type Candidate, describeRule, type RiskRule, type Selection, type SelectionCounts, selectMembers, type ValueModel } from "./select.js";
import { type UpliftPlanSource, upliftParams, upliftRows, upliftSelection } from "./uplift-plan.js";

export interface ValueSource extends ValueModel {
  /** Where values come from; null = the file the run scored. */
  source: SourceSpec | null;
  idColumn: string;
  valueColumn: string;
}

export interface PlanRequest {
  name: string;
  /** A score run id or `latest`. */
  run: string;
  rule: RiskRule;
  budget: number | null;
  controlShare: number;
  cooldownDays: number;
  /** Default: derived from the campaign name, so the plan is reproducible without one. */
  seed?: number | undefined;
  offer?: string | undefined;
  values?: ValueSource | undefined;
  /** The risk bands (with cut-offs) of the model that scored the run: a band rule must name one of them. */
  modelBands: (run: ScoreRun) => Promise<readonly Band[]>;
  /** An offer playbook: each member's offer from the reasons stored with their score (docs/campaigns.md). */
  playbook?: PlanPlaybook | undefined;
  now?: Date | undefined;
  /** Rank by predicted uplift (`--rank-by uplift`) instead of risk or expected value (src/campaigns/uplift-plan.ts). */
  uplift?: UpliftPlanSource | undefined;
}

export interface PlanResult {
  status: "planned" | "already_planned";
  campaign: CampaignRow;
  counts: SelectionCounts;
  /** The scoring model's bands, highest first: a customer is in the first band whose `min` its probability reaches. */
  bands: readonly Band[];
  notes: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The receiver's deduplication key for one customer of one campaign: stable across re-plans and resends. */
export function idempotencyKey(campaign: string, customerId: string): string {
  return `churnops-${createHash("sha256").update(campaign).update("\0").update(customerId).digest("hex").slice(0, 32)}`;
}

/**
 * Plan a campaign on a score run: select, rank, cut at the budget, hold out a stratified control group, and
 * record campaign, members and outbox in one transaction. Planning a name that exists with the same settings
 * returns the recorded plan untouched; with different settings it is refused.
 */
export async function planCampaign(store: Store, request: PlanRequest): Promise<PlanResult> {
  if (!NAME.test(request.name))
    throw new ChurnopsError("bad_input", `campaign name ${JSON.stringify(request.name)}: use letters, digits, '.', '_' and '-'`, { field: "name" });
  const existing = await getCampaign(store, request.name);
  const run = existing !== undefined && request.run === "latest" ? await resolveRun(store, existing.run_id) : await resolveRun(store, request.run);
  const bands = await plannableBands(run, request);
  const seed = request.seed ?? seedFromText(request.name);
  const params = planParams(request, run, seed);
  if (existing !== undefined) return alreadyPlanned(existing, params, bands);

  const notes: string[] = [];
  const selection = await select(store, run, request, seed, notes);
  // The members' stored reasons (score --reasons N) travel in their messages and choose their playbook offers.
  const reasons = await runReasons(
    store,
    run.run_id,
    selection.members.map((m) => m.customerId),
  );
  const offers = memberOffers(request.playbook, run, selection.members, reasons, request.offer ?? null);
  const plannedAt = (request.now ?? new Date()).toISOString();
  const campaign: CampaignRow = {
    name: request.name,
    run_id: run.run_id,
    as_of: run.as_of,
    model_name: run.model_name,
    model_version: run.model_version,
    rule: JSON.stringify(request.rule),
    ranking: request.uplift !== undefined ? "uplift" : request.values === undefined ? "risk" : "expected_value",
    params: JSON.stringify(params),
    seed,
    budget: request.budget,
    control_share: request.controlShare,
    cooldown_days: request.cooldownDays,
    offer: request.offer ?? null,
    offer_cost: request.values?.offerCost ?? null,
    counts: JSON.stringify(selection.counts),
    treated: selection.counts.treated,
    control: selection.counts.control,
    planned_at: plannedAt,
  };
  const members: CampaignMemberRow[] = selection.members.map((m) => ({
    campaign: request.name,
    customer_id: m.customerId,
    arm: m.arm,
    rank: m.rank,
    probability: m.probability,
    band: m.band,
    model_version: m.modelVersion,
    value: m.value,
    expected_value: m.expectedValue,
    planned_at: plannedAt,
    offer: offers?.get(m.customerId)?.offer ?? null,
    offer_reason: offers?.get(m.customerId)?.reason?.feature ?? null,
  }));
  const messages: NewMessage[] = selection.members
    .filter((m) => m.arm === "treatment")
    .map((m) => {
      const key = idempotencyKey(request.name, m.customerId);
      const choice = offers?.get(m.customerId);
      const payload = {
        idempotency_key: key,
        campaign: request.name,
        customer_id: m.customerId,
        offer: choice === undefined ? (request.offer ?? null) : choice.offer,
        probability: m.probability,
        band: m.band,
        rank: m.rank,
        model_name: run.model_name,
        model_version: m.modelVersion,
        run_id: run.run_id,
        planned_at: plannedAt,
        // Why this offer (the reason that matched a playbook rule) and the filled-in message; null without a playbook.
        offer_reason: choice?.reason === null || choice === undefined ? null : { ...choice.reason, rule: choice.rule },
        message: choice?.message ?? null,
        reasons: reasons.get(m.customerId) ?? null,
      };
      return { campaign: request.name, customer_id: m.customerId, idempotency_key: key, payload: JSON.stringify(payload), created_at: plannedAt };
    });
  if (!(await insertPlan(store, campaign, members, messages, upliftRows(request.name, selection)))) {
    const winner = await getCampaign(store, request.name);
    if (winner === undefined) throw new ChurnopsError("conflict", `campaign ${request.name} could not be recorded`);
    return alreadyPlanned(winner, params, bands);
  }
  return { status: "planned", campaign, counts: selection.counts, bands, notes };
}

/** A plan needs a complete run and, for a band rule, a band of the model that scored it; the model's bands. */
async function plannableBands(run: ScoreRun, request: PlanRequest): Promise<readonly Band[]> {
  requireScores(run);
  if (run.status !== "complete") throw new ChurnopsError("conflict", `score run ${run.run_id} is ${run.status}; plan on a complete run`, { field: "run" });
  const bands = await request.modelBands(run);
  if (request.playbook !== undefined) await checkPlaybook(request.playbook, run);
  const rule = request.rule;
  if (rule.kind === "band" && !bands.some((b) => b.name === rule.band))
    throw new ChurnopsError(
      "bad_input",
      `unknown risk band ${JSON.stringify(rule.band)}: model ${run.model_name} v${run.model_version} has the bands ${bands.map((b) => b.name).join(", ")}`,
      { field: "min-band" },
    );
  return bands;
}

/** The selection a plan would record, computed exactly as `planCampaign` does. */
async function select(store: Store, run: ScoreRun, request: PlanRequest, seed: number, notes: string[]): Promise<Selection> {
  const candidates = await loadCandidates(store, run, request, notes);
  const cooldown = request.cooldownDays > 0 ? await treatedAfter(store, addDays(run.as_of, -request.cooldownDays), request.name) : new Set<string>();
  const exclusions = { cooldown, optedOut: await optedOut(store), churned: await churnedBy(store, run.as_of) };
  if (request.uplift !== undefined) return upliftSelection(run, candidates, exclusions, request, seed, notes);
  return selectMembers(candidates, exclusions, { budget: request.budget, controlShare: request.controlShare, seed, values: request.values ?? null });
}

export interface PlanPreview {
  run: ScoreRun;
  counts: SelectionCounts;
  bands: readonly Band[];
  seed: number;
  notes: string[];
  /** A campaign of this name is already recorded: planning it would return that plan (or refuse other settings). */
  exists: boolean;
}

/**
 * What planning would select (matching, excluded and why, treated, held out) without recording anything: the
 * console's live preview. Same checks, same selection and seed as `planCampaign`, so the plan matches it.
 */
export async function previewCampaign(store: Store, request: PlanRequest): Promise<PlanPreview> {
  const run = await resolveRun(store, request.run);
  const bands = await plannableBands(run, request);
  const seed = request.seed ?? seedFromText(request.name);
  const notes: string[] = [];
  const selection = await select(store, run, request, seed, notes);
  return { run, counts: selection.counts, bands, seed, notes, exists: (await getCampaign(store, request.name)) !== undefined };
}

function planParams(request: PlanRequest, run: ScoreRun, seed: number): Record<string, unknown> {
  return {
    run: run.run_id,
    rule: describeRule(request.rule),
    budget: request.budget,
    control_share: request.controlShare,
    cooldown_days: request.cooldownDays,
    seed,
    offer: request.offer ?? null,
    // Only with a playbook: the params of campaigns planned without one stay as they were recorded.
    ...(request.playbook === undefined ? {} : { playbook: { name: request.playbook.name, ...request.playbook.rules } }),
    ...(request.uplift === undefined ? {} : { uplift: upliftParams(request.uplift) }),
    values:
      request.values === undefined
        ? null
        : {
            source: request.values.source?.data ?? run.source,
            table: request.values.source?.table ?? null,
            id_column: request.values.idColumn,
            value_column: request.values.valueColumn,
            offer_cost: request.values.offerCost,
            offer_success: request.values.offerSuccess,
          },
  };
}

function alreadyPlanned(existing: CampaignRow, params: Record<string, unknown>, bands: readonly Band[]): PlanResult {
  const recorded = JSON.parse(existing.params) as Record<string, unknown>;
  const differing = Object.keys(params).filter((k) => JSON.stringify(params[k]) !== JSON.stringify(recorded[k]));
  if (differing.length > 0) {
    throw new ChurnopsError(
      "conflict",
      `campaign ${existing.name} was already planned with different settings (${differing.map((k) => `${k}: ${JSON.stringify(recorded[k])}`).join("; ")}); plan under a new name`,
      { field: "name" },
    );
  }
  return { status: "already_planned", campaign: existing, counts: JSON.parse(existing.counts) as SelectionCounts, bands, notes: [] };
}

async function loadCandidates(store: Store, run: ScoreRun, request: PlanRequest, notes: string[]): Promise<Candidate[]> {
  const rule = request.rule;
  const scored = await scoredCustomers(store, run.run_id, rule);
  if (rule.kind === "band" && scored.length === 0) notes.push(`no customer of run ${run.run_id} is in band ${rule.band}`);
  const values = request.values === undefined ? null : await loadValues(run, request.values, new Set(scored.map((s) => s.customer_id)));
  return scored.map((s) => ({
    customerId: s.customer_id,
    probability: s.probability,
    band: s.band,
    modelVersion: s.model_version,
    value: values?.get(s.customer_id) ?? null,
  }));
}

/** Customer values for the wanted customers, from the value source (a finite, non-negative number or nothing). */
async function loadValues(run: ScoreRun, spec: ValueSource, wanted: ReadonlySet<string>): Promise<Map<string, number>> {
  let source = spec.source;
  if (source === null) {
    if (!existsSync(run.source))
      throw new ChurnopsError(
        "bad_input",
        `score run ${run.run_id} read ${run.source}, which is not a file here; give the customer values with --values FILE`,
        { field: "values" },
      );
    source = { data: run.source };
  }
  const reader = await openSource(source);
  const values = new Map<string, number>();
  try {
    for await (const chunk of reader.chunks({ columns: [spec.idColumn, spec.valueColumn], chunkSize: 65_536, skipRows: 0 })) {
      const ids = chunk.columns.get(spec.idColumn) ?? [];
      const vals = chunk.columns.get(spec.valueColumn) ?? [];
      for (let i = 0; i < chunk.size; i++) {
        const id = ids[i];
        if (id === null || id === undefined) continue;
        const key = String(id);
        if (!wanted.has(key)) continue;
        const raw = vals[i];
        const v =
          typeof raw === "number" ? raw : typeof raw === "bigint" ? Number(raw) : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : Number.NaN;
        if (Number.isFinite(v) && v >= 0) values.set(key, v);
      }
    }
  } finally {
    await reader.close();
  }
  return values;
}
