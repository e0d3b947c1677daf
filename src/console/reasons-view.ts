import type { BundleJson } from "../model/bundle.js";
import type { FeatureValue } from "../model/features.js";
import { type Language, ReasonWriter } from "../model/reasons.js";
import type { StoredReason } from "../store/read/customer-reasons.js";
import { type WaterfallOptions, waterfallChart } from "./charts.js";
import type { Translator } from "./i18n.js";

/** A stored reason as a page shows it: worded in the reader's language when the scoring bundle is at hand. */
export interface ShownReason {
  feature: string;
  label: string;
  value: FeatureValue;
  contribution: number;
  text: string;
}

/**
 * Rewords stored reasons in the page's language. Reasons are stored in the language the run was scored with
 * (`score --lang`); the sentence depends only on the bundle's reference profile and the value, so with the
 * bundle the console says it again in Japanese or English. Without it (the version left the registry) the
 * stored sentence is shown as it is.
 */
export class ReasonWording {
  private readonly writers = new WeakMap<BundleJson, Map<Language, ReasonWriter>>();

  show(stored: readonly StoredReason[], bundle: BundleJson | null, language: Language): ShownReason[] {
    const writer = bundle === null ? null : this.writer(bundle, language);
    return stored.map((r, rank) => {
      const j = writer === null ? -1 : writer.features.findIndex((f) => f.name === r.feature);
      if (writer === null || j < 0) return { ...r };
      return { ...r, label: writer.labelOf(j), text: writer.text(j, r.value, rank === 0) };
    });
  }

  private writer(bundle: BundleJson, language: Language): ReasonWriter | null {
    if (!bundle.explanations.available) return null;
    let byLanguage = this.writers.get(bundle);
    if (byLanguage === undefined) {
      byLanguage = new Map();
      this.writers.set(bundle, byLanguage);
    }
    let writer = byLanguage.get(language);
    if (writer === undefined) {
      writer = new ReasonWriter(bundle, language);
      byLanguage.set(language, writer);
    }
    return writer;
  }
}

function logit(p: number): number {
  // A stored probability of exactly 0 or 1 (float rounding) would put the customer at infinity.
  const q = Math.min(Math.max(p, 1e-7), 1 - 1e-7);
  return Math.log(q / (1 - q));
}

export function valueText(value: FeatureValue, i: Translator): string {
  if (value === null) return "–";
  if (typeof value === "number") return i.num(value, Number.isInteger(value) ? 0 : 2);
  return String(value);
}

/**
 * The waterfall of a customer's stored reasons: the model's baseline, each stored reason's contribution, then
 * everything else as one step (so the bars end exactly at the customer's probability: baseline + Σ = logit p).
 * Null when the bundle with the baseline is not at hand.
 */
export function reasonsWaterfall(reasons: readonly ShownReason[], probability: number, bundle: BundleJson | null, i: Translator): string | null {
  if (bundle === null || !bundle.explanations.available) return null;
  const baseline = bundle.explanations.baseline;
  const total = logit(probability);
  const steps: WaterfallOptions["steps"] = reasons.map((r) => ({ label: `${r.label}: ${valueText(r.value, i)}`, delta: r.contribution }));
  const rest = total - baseline - reasons.reduce((s, r) => s + r.contribution, 0);
  steps.push({ label: i.t("customer.reasons_others"), delta: rest });
  return waterfallChart({
    width: 640,
    height: 44 + 30 * (steps.length + 2),
    label: i.t("customer.reasons_desc"),
    baseline: { label: i.t("customer.reasons_baseline"), logOdds: baseline },
    steps,
    total: { label: i.t("customer.reasons_total"), logOdds: total },
    formatProbability: (p) => i.pct(p),
    formatTick: (p) => i.pct(p, 0),
    formatDelta: (d) => `${d >= 0 ? "+" : "−"}${i.num(Math.abs(d), 2)}`,
  });
}
