import { ChurnopsError } from "../errors.js";
import type { BundleJson } from "../model/bundle.js";
import type { Store } from "../store/db.js";
import { parseCategoryFilter, parseRiskFilter, RISK_PARAMS, type RiskFilter } from "../store/read/risk.js";
import { resolveRun, type ScoreRun } from "../store/runs.js";
import { type CategoricalFeature, storedCategoricalFeatures } from "../store/score-features.js";

export interface ResolvedRiskFilter {
  filter: RiskFilter;
  run: ScoreRun;
  /** The run's model's categorical features that can be filtered by (empty when its bundle is not at hand). */
  categorical: CategoricalFeature[];
  /** The bundle's stand-in for a missing value: a category in the graph, stored as "missing" (never matched). */
  missingToken: string | null;
}

/**
 * The risk list's query parameters, as the page and its CSV export both read them: the list's own (run, band,
 * probability range, id text, sort) and one per categorical feature of the model that scored the run. A
 * parameter that is neither is refused by name, so a mistyped filter never returns the unfiltered list.
 */
export async function resolveRiskFilter(
  store: Store,
  query: Record<string, unknown>,
  bundleOf: (run: ScoreRun) => Promise<BundleJson | null>,
): Promise<ResolvedRiskFilter> {
  const base = parseRiskFilter(query);
  const run = await resolveRun(store, base.run);
  const bundle = await bundleOf(run);
  const categorical = bundle === null ? [] : storedCategoricalFeatures(bundle).filter((f) => !RISK_PARAMS.has(f.name));
  const known = new Set(categorical.map((f) => f.name));
  for (const [name, value] of Object.entries(query)) {
    if (RISK_PARAMS.has(name) || known.has(name) || typeof value !== "string" || value.trim() === "") continue;
    const why =
      bundle === null
        ? `the bundle of model ${run.model_name} v${run.model_version}, which scored run ${run.run_id}, is not in the registry, so its features are not known`
        : `the list filters by run, band, min_p, max_p, q and the model's categorical features (${categorical.map((f) => f.name).join(", ") || "none"})`;
    throw new ChurnopsError("bad_input", `${name}: not a filter of the risk list; ${why}`, { field: name });
  }
  return { filter: { ...base, categories: parseCategoryFilter(query, categorical) }, run, categorical, missingToken: bundle?.schema.missing_token ?? null };
}
