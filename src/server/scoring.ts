import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { FeatureValue } from "../model/features.js";
import type { Explanation, Language } from "../model/reasons.js";
import type { ServerMetrics } from "./metrics.js";
import type { FeatureRow, Lease, Scored, ServedModel, Variant } from "./models.js";
import type { PredictionLog, PredictionRecord } from "./prediction-log.js";
import { type ApiViolation, isPlainObject, MAX_VIOLATIONS, parseCustomerId } from "./validation.js";
import { assignVariant, type Routing } from "./variants.js";

export interface Prediction {
  customer_id: string;
  churn_probability: number;
  risk_band: string;
  decision: boolean;
  model: { name: string; version: string };
  variant: Variant;
  /** Present unless the request said explain=false; null when the model's bundle has no contributions. */
  explanation?: Explanation | null;
}

/** What the caller asked for besides the scores. */
export interface ExplainOptions {
  explain: boolean;
  reasons: number;
  language: Language;
}

const NO_EXPLANATION: ExplainOptions = { explain: false, reasons: 0, language: "en" };

export interface ScoringDeps {
  routing: Routing;
  metrics: ServerMetrics;
  predictionLog: PredictionLog | null;
  log: Logger;
}

export type ScoreOutcome = { ok: true; predictions: Prediction[] } | { ok: false; violations: ApiViolation[]; total: number };

/** Records validated (or explained) between two turns of the event loop. */
const VALIDATE_BEFORE_YIELD = 128;

/** A turn of the event loop for the other requests (their I/O, their small ONNX calls). */
export const yieldTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

interface Accepted {
  index: number;
  customerId: string;
  record: Readonly<Record<string, unknown>>;
  row: Record<string, FeatureValue>;
}

/** Rows one model scores in one call, and where their answers go. */
class Group {
  readonly members: Accepted[] = [];
  private readonly rows: FeatureRow[] = [];

  constructor(readonly served: ServedModel) {}

  add(a: Accepted): void {
    this.members.push(a);
    this.rows.push(a.row);
  }

  predict(explain: boolean): Promise<Scored> {
    return this.served.score(this.rows, explain);
  }
}

/**
 * Validate and score the customers of one request. Every record is checked (all violations reported, none
 * scored, if any fails); each customer goes to the variant its id hashes to; each model scores its rows in one
 * ONNX call; in shadow mode the challenger scores the same rows and is logged, not answered.
 */
export async function scoreCustomers(
  deps: ScoringDeps,
  lease: Lease,
  records: readonly unknown[],
  pathOf: (index: number) => string,
  requestId: string,
  startedAt: number,
  options: ExplainOptions = NO_EXPLANATION,
): Promise<ScoreOutcome> {
  const { routing } = deps;
  const challenger = lease.challenger;
  const split = challenger !== null && routing.mode === "split";
  const groups = new Map<Variant, Group>();
  const violations: ApiViolation[] = [];
  let total = 0;
  const reject = (vs: readonly ApiViolation[]): void => {
    total += vs.length;
    for (const v of vs) if (violations.length < MAX_VIOLATIONS) violations.push(v);
  };

  for (let index = 0; index < records.length; index++) {
    // Validating a large batch takes milliseconds of the event loop; other requests get turns in between.
    if (index > 0 && index % VALIDATE_BEFORE_YIELD === 0) await yieldTurn();
    const record = records[index];
    const path = pathOf(index);
    if (!isPlainObject(record)) {
      reject([
        {
          field: path === "" ? "(body)" : path,
          code: "wrong_type",
          message: `${path === "" ? "the body" : path} must be a JSON object of one customer's fields`,
        },
      ]);
      continue;
    }
    const idField = lease.champion.validator.idField;
    const id = parseCustomerId(record[idField], path === "" ? idField : `${path}.${idField}`);
    const variant: Variant = id.ok && split ? assignVariant(id.value, routing) : "champion";
    const served = variant === "challenger" && challenger !== null ? challenger : lease.champion;
    const checked = served.validator.check(record, path);
    if (!id.ok) reject(id.violations);
    if (!checked.ok) reject(checked.violations);
    if (!id.ok || !checked.ok || total > 0) continue;
    let group = groups.get(variant);
    if (group === undefined) {
      group = new Group(served);
      groups.set(variant, group);
    }
    group.add({ index, customerId: id.value, record, row: checked.value });
  }
  if (total > 0) return { ok: false, violations, total };

  const shadow = challenger !== null && routing.mode === "shadow" ? shadowGroup(deps, challenger, groups.get("champion")) : null;
  const scored = await Promise.all([...groups.values()].map(async (g) => ({ group: g, result: await g.predict(options.explain) })));
  const shadowScored =
    shadow === null
      ? null
      : await shadow.predict(false).then(
          (p) => p,
          (err: unknown) => {
            deps.metrics.shadowSkipped.inc(shadow.members.length);
            deps.log.warn({ event: "shadow.failed", err, request_id: requestId }, "the shadow challenger failed; the champion answered");
            return null;
          },
        );

  const latencyMs = performance.now() - startedAt;
  const createdAt = new Date().toISOString();
  const predictions = new Array<Prediction>(records.length);
  const logRows: PredictionRecord[] | null = deps.predictionLog === null ? null : [];
  for (const { group, result } of scored) {
    collect(deps, group, result.probabilities, false, { requestId, latencyMs, createdAt }, logRows, predictions);
    if (options.explain) await explainInto(group, result, options, predictions);
  }
  if (shadow !== null && shadowScored !== null) collect(deps, shadow, shadowScored.probabilities, true, { requestId, latencyMs, createdAt }, logRows, null);
  // Answered only once logged: a full log makes the answer wait (or refuses it, 503), never drops a logged row.
  if (logRows !== null) await deps.predictionLog?.accept(logRows);
  return { ok: true, predictions };
}

/**
 * Each member's explanation (null, and said so, for a model whose bundle carries no contributions). A large
 * batch's explanations take milliseconds: other requests get a turn every VALIDATE_BEFORE_YIELD rows.
 */
async function explainInto(group: Group, result: Scored, options: ExplainOptions, out: Prediction[]): Promise<void> {
  const writers = group.served.reasons;
  for (let i = 0; i < group.members.length; i++) {
    if (i > 0 && i % VALIDATE_BEFORE_YIELD === 0) await yieldTurn();
    const member = group.members[i] as Accepted;
    const prediction = out[member.index];
    if (prediction === undefined) continue;
    prediction.explanation =
      writers === null || result.contributions === null ? null : writers[options.language].explain(result.contributions, i, member.row, options.reasons);
  }
}

/** The challenger's group in shadow mode: the champion's rows that the challenger's own schema accepts. */
function shadowGroup(deps: ScoringDeps, challenger: ServedModel, champion: Group | undefined): Group | null {
  if (champion === undefined) return null;
  const group = new Group(challenger);
  for (const m of champion.members) {
    const c = challenger.validator.check(m.record, "");
    if (c.ok) group.add({ ...m, row: c.value });
    else deps.metrics.shadowSkipped.inc();
  }
  return group.members.length === 0 ? null : group;
}

function collect(
  deps: ScoringDeps,
  group: Group,
  probabilities: Float32Array,
  shadow: boolean,
  meta: { requestId: string; latencyMs: number; createdAt: string },
  logRows: PredictionRecord[] | null,
  out: Prediction[] | null,
): void {
  const { model, variant } = group.served;
  const ref = group.served.ref;
  const bands = new Map<string, number>();
  for (let i = 0; i < group.members.length; i++) {
    const member = group.members[i] as Accepted;
    const p = probabilities[i] ?? Number.NaN;
    if (!Number.isFinite(p)) throw new Error(`model ${ref.name} v${ref.version} returned ${p} for row ${member.index}`);
    const band = model.band(p);
    const decision = model.decide(p);
    bands.set(band, (bands.get(band) ?? 0) + 1);
    if (out !== null) out[member.index] = { customer_id: member.customerId, churn_probability: p, risk_band: band, decision, model: ref, variant };
    logRows?.push({
      id: randomUUID(),
      request_id: meta.requestId,
      customer_id: member.customerId,
      variant,
      model_name: ref.name,
      model_version: ref.version,
      probability: p,
      band,
      decision: decision ? 1 : 0,
      latency_ms: meta.latencyMs,
      shadow: shadow ? 1 : 0,
      created_at: meta.createdAt,
    });
  }
  // One labelled increment per band, not per row: a 1,000-row batch would otherwise pay 1,000 label look-ups.
  for (const [band, n] of bands) deps.metrics.predictions.inc({ band, model_version: ref.version, variant, shadow: shadow ? "1" : "0" }, n);
}
