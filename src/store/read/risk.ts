import { type SelectQueryBuilder, sql } from "kysely";
import { z } from "zod";
import { ChurnopsError } from "../../errors.js";
import type { Store } from "../db.js";
import { idsContaining, indexRunIds } from "../id-search.js";
import { resolveRun, runKeyOf, type ScoreRun, scoresOfRun } from "../runs.js";
import type { Database } from "../schema.js";
import { type CategoricalFeature, featureCode, featureCondition } from "../score-features.js";

/** How the risk list is ordered; every order is a keyset over an index, so any page costs the same. */
export const RISK_SORTS = ["risk_desc", "risk_asc", "id_asc", "id_desc"] as const;

const probability = (field: string) =>
  z.coerce
    .number({ error: `${field}: expected a probability from 0 to 1` })
    .min(0, `${field}: expected a probability from 0 to 1`)
    .max(1, `${field}: expected a probability from 0 to 1`);

/** The risk list's query parameters, shared by the page and its CSV export so both mean exactly the same rows. */
export const riskFilterSchema = z.object({
  run: z.string().min(1).max(200).default("latest"),
  band: z.string().max(64).optional(),
  min_p: probability("min_p").optional(),
  max_p: probability("max_p").optional(),
  q: z.string().max(200).optional(),
  sort: z.enum(RISK_SORTS).default("risk_desc"),
});
/** "Feature `feature` had value `value` when scored", located in the stored categorical inputs. */
export interface CategoryCondition {
  feature: string;
  value: string;
  byte: number;
  code: number;
}

export type RiskFilter = z.infer<typeof riskFilterSchema> & {
  /** Any categorical feature of the run's model, by its value (docs/store.md, "Categorical inputs"). */
  categories?: CategoryCondition[];
};

/** The list's own parameters: a feature of the same name cannot be filtered by (its parameter means these). */
export const RISK_PARAMS = new Set(["run", "band", "min_p", "max_p", "q", "sort", "after", "lang"]);

/**
 * The categorical filters among the query parameters: one per feature of the run's model, named like the
 * feature (`contract_type=Month-to-month`), its value one of the model's categories. Other parameters are left
 * to parseRiskFilter. A value the model does not know is refused naming the feature and what it accepts.
 */
export function parseCategoryFilter(query: Record<string, unknown>, features: readonly CategoricalFeature[]): CategoryCondition[] {
  const out: CategoryCondition[] = [];
  for (const f of features) {
    if (RISK_PARAMS.has(f.name)) continue;
    const given = query[f.name];
    if (typeof given !== "string" || given.trim() === "") continue;
    const value = given.trim();
    if (!f.categories.includes(value)) {
      const shown = f.categories.slice(0, 12).join(", ");
      throw new ChurnopsError(
        "bad_input",
        `${f.name}: expected one of the model's values (${shown}${f.categories.length > 12 ? ", …" : ""}), not ${JSON.stringify(value.slice(0, 80))}`,
        {
          field: f.name,
        },
      );
    }
    const located = featureCode(features, f.name, value);
    out.push({ feature: f.name, value, ...located });
  }
  return out;
}

/** Query parameters as a form sends them: an empty field means "not set". */
export function parseRiskFilter(query: Record<string, unknown>): RiskFilter {
  const given = Object.fromEntries(
    Object.entries(query)
      .filter(([, v]) => typeof v === "string" && v.trim() !== "")
      .map(([k, v]) => [k, (v as string).trim()]),
  );
  const parsed = riskFilterSchema.safeParse(given);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? "query");
    const message = issue?.message.startsWith(field) ? issue.message : `${field}: ${issue?.message ?? "invalid"}`;
    throw new ChurnopsError("bad_input", message, { field });
  }
  const filter = parsed.data;
  if (filter.min_p !== undefined && filter.max_p !== undefined && filter.min_p > filter.max_p) {
    throw new ChurnopsError("bad_input", `min_p ${filter.min_p} is above max_p ${filter.max_p}`, { field: "min_p" });
  }
  return filter;
}

export const riskRowSchema = z.object({
  customer_id: z.string(),
  probability: z.number(),
  band: z.string(),
  decision: z.number().int(),
  run_id: z.string(),
  model_version: z.string(),
});
export type RiskRow = z.infer<typeof riskRowSchema>;

/** Where a page starts: the sort key of the last row of the page before. */
const cursorSchema = z.object({ p: z.number(), id: z.string() });
type Cursor = z.infer<typeof cursorSchema>;

export function encodeCursor(row: RiskRow): string {
  return Buffer.from(JSON.stringify({ p: row.probability, id: row.customer_id })).toString("base64url");
}

function decodeCursor(text: string): Cursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(text, "base64url").toString("utf8")));
  } catch {
    throw new ChurnopsError("bad_input", "after: not a page cursor from this list (follow the page's own links)", { field: "after" });
  }
}

/** The compact columns of one run's scores, as the risk list's covering index holds them (migration 020). */
type CompactRow = { customer_id: string; probability: number; band_code: number; decision: number };
type ScoresQuery = SelectQueryBuilder<Database, "score_rows", CompactRow>;

/**
 * What turns a run's compact rows into list rows: its store key, and the band labels by code. The list reads
 * score_rows itself, not the `scores` view: the view joins the run and the band to every row, which held the
 * 1,000,000-row export to 146k rows/s; the run's id and version are the same on every row and bands are few.
 */
interface RunScores {
  run: ScoreRun;
  key: number;
  bandOf: Map<number, string>;
  codeOf: Map<string, number>;
}

async function runScores(store: Store, run: ScoreRun): Promise<RunScores> {
  const [key, bands] = await Promise.all([runKeyOf(store, run.run_id), store.db.selectFrom("score_bands").select(["band_code", "band"]).execute()]);
  if (key === null) throw new ChurnopsError("run_not_found", `score run ${run.run_id} is gone`, { field: "run" });
  return {
    run,
    key,
    bandOf: new Map(bands.map((b) => [b.band_code, b.band])),
    codeOf: new Map(bands.map((b) => [b.band, b.band_code])),
  };
}

function riskRows(scores: RunScores, rows: readonly CompactRow[]): RiskRow[] {
  const { run_id, model_version } = scores.run;
  return rows.map((r) => ({
    customer_id: r.customer_id,
    probability: r.probability,
    band: scores.bandOf.get(r.band_code) ?? String(r.band_code),
    decision: r.decision,
    run_id,
    model_version,
  }));
}

/**
 * More ids than this containing `q` and the search is not selective: the scan in the list's own order finds a
 * page of them sooner than looking each one up.
 */
const MAX_SEARCH_IDS = 5_000;

/**
 * The ids that can match the filter's text search, from the trigram index (src/store/id-search.ts): a list to look
 * up by primary key, or null when the scan is the better plan (no search, short or unselective text, no index).
 */
async function searchIds(store: Store, run: ScoreRun, filter: RiskFilter): Promise<string[] | null> {
  if (filter.q === undefined || run.status !== "complete") return null;
  await indexRunIds(store, run.run_id);
  const ids = await idsContaining(store, filter.q, MAX_SEARCH_IDS + 1);
  return ids === null || ids.length > MAX_SEARCH_IDS ? null : ids;
}

/** The filter's rows, or null when it names a band no score has (so no row can match). */
function filtered(store: Store, scores: RunScores, filter: RiskFilter, ids: readonly string[] | null): ScoresQuery | null {
  let q = store.db.selectFrom("score_rows").select(["customer_id", "probability", "band_code", "decision"]).where("run_key", "=", scores.key);
  // The index's candidates narrow the rows to look at; the substring test below stays the definition.
  if (ids !== null) q = q.where("customer_id", "in", ids);
  // The stored inputs are not in the list's index: each candidate row is looked up, so a rare value costs a
  // longer walk down the list (a scan of the run's rows at worst; docs/console.md, "Speed").
  for (const c of filter.categories ?? []) q = q.where(featureCondition(store.dialect, "features", c.byte, c.code));
  if (filter.band !== undefined) {
    const code = scores.codeOf.get(filter.band);
    if (code === undefined) return null;
    q = q.where("band_code", "=", code);
  }
  if (filter.min_p !== undefined) q = q.where("probability", ">=", filter.min_p);
  if (filter.max_p !== undefined) q = q.where("probability", "<=", filter.max_p);
  if (filter.q !== undefined) {
    // A case-sensitive substring in both dialects (LIKE is case-insensitive in SQLite only, and needs escaping).
    const needle = filter.q;
    q = q.where(store.dialect === "postgres" ? sql<boolean>`strpos(customer_id, ${needle}) > 0` : sql<boolean>`instr(customer_id, ${needle}) > 0`);
  }
  return q;
}

function ordered(q: ScoresQuery, sort: RiskFilter["sort"], after: Cursor | null, byIds = false): ScoresQuery {
  // Looking up a search's few ids, the rows are found by key and sorted; ordered by the bare column, SQLite would
  // rather walk the run's whole risk index to skip the sort (measured: 366 ms p95 for a 20-id search of a 1M run).
  // The unary plus keeps the order and lets no index provide it.
  const p = byIds ? sql<number>`+probability` : sql<number>`probability`;
  switch (sort) {
    // The redundant bound (probability ≤ / ≥ the cursor's) is what lets SQLite seek the index instead of
    // scanning from the top for every page: it does not use an index range for the OR alone (measured: the 1M-row
    // export went from 84k to 135k rows/s before migration 018's covering index).
    case "risk_desc":
      if (after !== null)
        q = q
          .where("probability", "<=", after.p)
          .where((eb) => eb.or([eb("probability", "<", after.p), eb.and([eb("probability", "=", after.p), eb("customer_id", ">", after.id)])]));
      return q.orderBy(p, "desc").orderBy("customer_id", "asc");
    case "risk_asc":
      if (after !== null)
        q = q
          .where("probability", ">=", after.p)
          .where((eb) => eb.or([eb("probability", ">", after.p), eb.and([eb("probability", "=", after.p), eb("customer_id", ">", after.id)])]));
      return q.orderBy(p, "asc").orderBy("customer_id", "asc");
    case "id_asc":
      if (after !== null) q = q.where("customer_id", ">", after.id);
      return q.orderBy("customer_id", "asc");
    case "id_desc":
      if (after !== null) q = q.where("customer_id", "<", after.id);
      return q.orderBy("customer_id", "desc");
  }
}

export interface RiskPage {
  run: ScoreRun;
  rows: RiskRow[];
  /** Cursor of the next page; null on the last one. */
  next: string | null;
}

/** One page of a run's customers matching the filter, starting after `after` (a cursor from the page before). */
export async function riskPage(store: Store, filter: RiskFilter, options: { after?: string | undefined; limit: number }): Promise<RiskPage> {
  const run = await resolveRun(store, filter.run);
  const after = options.after === undefined || options.after === "" ? null : decodeCursor(options.after);
  const [scores, ids] = await Promise.all([runScores(store, run), searchIds(store, run, filter)]);
  const q = ids !== null && ids.length === 0 ? null : filtered(store, scores, filter, ids);
  if (q === null) return { run, rows: [], next: null };
  const found = await ordered(q, filter.sort, after, ids !== null)
    .limit(options.limit + 1)
    .execute();
  const rows = riskRows(scores, found).map((r) => riskRowSchema.parse(r));
  const more = rows.length > options.limit;
  if (more) rows.pop();
  const last = rows[rows.length - 1];
  return { run, rows, next: more && last !== undefined ? encodeCursor(last) : null };
}

/** Every row matching the filter, in the list's order, a page at a time: memory stays flat whatever the run's size. */
export async function* iterateRisk(store: Store, filter: RiskFilter, pageSize = 10_000): AsyncGenerator<RiskRow[]> {
  const run = await resolveRun(store, filter.run);
  const [scores, ids] = await Promise.all([runScores(store, run), searchIds(store, run, filter)]);
  // Kysely's builders are immutable: the filter is built once and each page adds its own keyset bound.
  const q = ids !== null && ids.length === 0 ? null : filtered(store, scores, filter, ids);
  if (q === null) return;
  let after: Cursor | null = null;
  for (;;) {
    const page = await ordered(q, filter.sort, after, ids !== null)
      .limit(pageSize)
      .execute();
    if (page.length === 0) return;
    yield riskRows(scores, page);
    if (page.length < pageSize) return;
    const last = page[page.length - 1] as CompactRow;
    after = { p: last.probability, id: last.customer_id };
  }
}

/** The bands a run uses, for the filter's choices. */
export async function runBandNames(store: Store, runId: string): Promise<string[]> {
  const rows = await store.db.selectFrom("scores").select("band").distinct().where("run_id", "=", runId).where(scoresOfRun(runId)).execute();
  return rows.map((r) => r.band).sort();
}
