import type { BundleJson, ExplainedFeature } from "./bundle.js";
import type { FeatureValue } from "./features.js";

/**
 * Per-customer reasons from a bundle's contributions (docs/bundle.md, "Explanations"): the features that raise
 * this customer's risk the most, each with the customer's value, its contribution to the log-odds and a sentence
 * from the bundle's reference profile (a category's share of training customers, a number's training
 * percentile). One module for every consumer: the CLI's files, the API, the store and the console.
 */

/** Adverse-action notices give up to four reasons; so does the API by default. */
export const DEFAULT_REASONS = 4;
const MAX_CACHED_VALUES = 4096;
export const LANGUAGES = ["en", "ja"] as const;
export type Language = (typeof LANGUAGES)[number];

export interface Contribution {
  feature: string;
  value: FeatureValue;
  contribution: number;
}

export interface Reason extends Contribution {
  /** Human label from the dataset spec (`label:`), else the feature's name. */
  label: string;
  text: string;
}

export interface Explanation {
  baseline: number;
  contributions: Contribution[];
  reasons: Reason[];
}

interface Phrases {
  missing: string;
  share(pct: number): string;
  higher(pct: number): string;
  lower(pct: number): string;
  raises(first: boolean): string;
}

const PHRASES: Record<Language, Phrases> = {
  en: {
    missing: "not recorded",
    share: (pct) => `${pct}% of customers`,
    higher: (pct) => `higher than ${pct}% of customers`,
    lower: (pct) => `lower than ${pct}% of customers`,
    raises: (first) => (first ? "raises risk the most" : "raises risk"),
  },
  ja: {
    missing: "未記録",
    share: (pct) => `顧客の${pct}%`,
    higher: (pct) => `顧客の${pct}%より高い`,
    lower: (pct) => `顧客の${pct}%より低い`,
    raises: (first) => (first ? "リスクを最も高めています" : "リスクを高めています"),
  },
};

const JOIN: Record<Language, (head: string, profile: string, effect: string) => string> = {
  en: (head, profile, effect) => `${head} — ${profile}; ${effect}`,
  ja: (head, profile, effect) => `${head} — ${profile}。${effect}`,
};

/** Share of training values below `value` (0..1) from the 0th..100th percentiles; ties take their middle. */
export function percentileOf(percentiles: readonly number[], value: number): number {
  const n = percentiles.length;
  if (n < 2) return 0.5;
  const below = firstAtLeast(percentiles, value, false);
  const upTo = firstAtLeast(percentiles, value, true);
  const step = 1 / (n - 1);
  if (upTo > below) return ((below + upTo - 1) / 2) * step;
  if (below === 0) return 0;
  if (below === n) return 1;
  const lo = percentiles[below - 1] as number;
  const hi = percentiles[below] as number;
  return (below - 1 + (value - lo) / (hi - lo)) * step;
}

/** How many sorted percentiles are < value (or <= value when `inclusive`): a binary search. */
function firstAtLeast(sorted: readonly number[], value: number, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid] as number;
    if (v < value || (inclusive && v === value)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A number that determines a numeric reason's sentence: its value to 4 significant digits (what the sentence
 * shows) and its rounded percentile; null when the 4-digit rounding is too close to a tie to be sure it agrees
 * with toPrecision (then the sentence is built from the value itself).
 */
function numericKey(value: number, below: number): number | null {
  // Whole numbers are shown in full (not to 4 digits) and repeat anyway: the value cache has them.
  if (Number.isInteger(value) || !Number.isFinite(value)) return null;
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  const scaled = value * 10 ** (3 - exponent);
  const fraction = Math.abs(scaled - Math.trunc(scaled));
  if (Math.abs(fraction - 0.5) < 1e-6 || Math.abs(scaled) >= 10_000 || Math.abs(scaled) < 1000) return null;
  const pct = below >= 0.5 ? Math.round(below * 100) : 1000 + Math.round((1 - below) * 100);
  return (Math.round(scaled) * 1000 + (exponent + 400)) * 2048 + pct;
}

function formatValue(value: FeatureValue): string {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return String(value);
}

/**
 * Builds reasons for one bundle. The per-feature facts (labels, category shares, percentiles) are looked up
 * once here, not per row: batch scoring writes reasons for millions of rows.
 */
export class ReasonWriter {
  readonly features: readonly ExplainedFeature[];
  readonly baseline: number;
  readonly missingToken: string;
  private readonly labels: string[];
  private readonly shares: (Map<string, number> | null)[];
  /** A sentence depends only on (feature, value, top reason or not); values repeat across millions of rows. */
  private readonly cache = new Map<string, string>();

  constructor(
    bundle: BundleJson,
    readonly language: Language = "en",
  ) {
    const e = bundle.explanations;
    if (!e.available) throw new Error("ReasonWriter needs a bundle with contributions");
    this.features = e.features;
    this.baseline = e.baseline;
    this.missingToken = bundle.schema.missing_token;
    // The dataset spec's label in this language, else its one label, else the column's name (docs/bundle.md).
    this.labels = e.features.map((f) => f.labels?.[language] ?? f.label ?? f.name);
    this.shares = e.features.map((f) => {
      const profile = bundle.reference.features[f.name];
      return f.kind === "categorical" && profile?.kind === "categorical" ? new Map(Object.entries(profile.freqs)) : null;
    });
  }

  labelOf(j: number): string {
    return this.labels[j] as string;
  }

  /** The features whose contributions are largest and positive, at most `n`, as indexes (highest first). */
  topIndexes(contributions: ArrayLike<number>, offset: number, n: number): number[] {
    const width = this.features.length;
    const top: number[] = [];
    for (let j = 0; j < width; j++) {
      const c = contributions[offset + j] as number;
      if (!(c > 0)) continue;
      let k = top.length;
      while (k > 0 && (contributions[offset + (top[k - 1] as number)] as number) < c) k--;
      if (k < n) {
        top.splice(k, 0, j);
        if (top.length > n) top.pop();
      }
    }
    return top;
  }

  /** Every distinct sentence textCode has handed out, by code (batch files carry codes, not strings). */
  readonly codes: string[] = [];
  private readonly sentenceCodes = new Map<string, number>();
  /** Per rank (top or not) and feature: numericKey → code. */
  private readonly numericCodes: Map<number, number>[][] = [[], []];
  /** Per feature and rank (top or not): value → code of its sentence. */
  private readonly codeCache: Map<FeatureValue, number>[][] = [];

  /**
   * A number standing for the sentence of feature `j` at `value` (its index in `codes`). Batch scoring writes
   * millions of reasons whose sentences repeat: a code is looked up by value, with no string built per row.
   */
  textCode(j: number, value: FeatureValue, first: boolean): number {
    let perFeature = this.codeCache[j];
    if (perFeature === undefined) {
      perFeature = [new Map(), new Map()];
      this.codeCache[j] = perFeature;
    }
    const cache = perFeature[first ? 0 : 1] as Map<FeatureValue, number>;
    const known = cache.get(value);
    if (known !== undefined) return known;
    // A continuous column's values rarely repeat, but their sentences do (4 digits, a rounded percentile).
    const percentiles = this.features[j]?.percentiles;
    if (typeof value === "number" && this.shares[j] === null && percentiles !== undefined && percentiles.length >= 2) {
      const key = numericKey(value, percentileOf(percentiles, value));
      if (key !== null) {
        const numeric = this.numericCodes[first ? 0 : 1] as Map<number, number>[];
        let byKey = numeric[j];
        if (byKey === undefined) {
          byKey = new Map();
          numeric[j] = byKey;
        }
        const code = byKey.get(key);
        if (code !== undefined) {
          if (cache.size < MAX_CACHED_VALUES) cache.set(value, code);
          return code;
        }
        const fresh = this.codeOfSentence(this.sentence(j, value, first));
        byKey.set(key, fresh);
        if (cache.size < MAX_CACHED_VALUES) cache.set(value, fresh);
        return fresh;
      }
    }
    // Distinct values (a continuous column) can run into millions; distinct sentences (4 significant digits,
    // a rounded percentile) stay few. Values are cached up to a bound, sentences always.
    const code = this.codeOfSentence(this.sentence(j, value, first));
    if (cache.size < MAX_CACHED_VALUES) cache.set(value, code);
    return code;
  }

  private codeOfSentence(sentence: string): number {
    let code = this.sentenceCodes.get(sentence);
    if (code === undefined) {
      code = this.codes.push(sentence) - 1;
      this.sentenceCodes.set(sentence, code);
    }
    return code;
  }

  /** The sentence for feature `j` at `value`; `first` when it is the top reason (cached: values repeat). */
  text(j: number, value: FeatureValue, first: boolean): string {
    const key = `${j}\u0000${first ? 1 : 0}\u0000${typeof value}\u0000${String(value)}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const sentence = this.sentence(j, value, first);
    if (this.cache.size < 100_000) this.cache.set(key, sentence);
    return sentence;
  }

  private sentence(j: number, value: FeatureValue, first: boolean): string {
    const feature = this.features[j] as ExplainedFeature;
    const words = PHRASES[this.language];
    const join = JOIN[this.language];
    const head = `${this.labels[j]}: ${value === null ? words.missing : formatValue(value)}`;
    const shares = this.shares[j];
    if (shares !== null && shares !== undefined) {
      const share = value === null ? undefined : shares.get(String(value));
      return join(head, share === undefined ? words.missing : words.share(Math.round(share * 100)), words.raises(first));
    }
    const percentiles = feature.percentiles ?? [];
    if (typeof value !== "number" || percentiles.length < 2) return join(head, words.missing, words.raises(first));
    const below = percentileOf(percentiles, value);
    const profile = below >= 0.5 ? words.higher(Math.round(below * 100)) : words.lower(Math.round((1 - below) * 100));
    return join(head, profile, words.raises(first));
  }

  /** The full explanation of row `row` of a [rows × width] contribution matrix. */
  explain(contributions: ArrayLike<number>, row: number, values: Readonly<Record<string, FeatureValue | undefined>>, n: number): Explanation {
    const width = this.features.length;
    const offset = row * width;
    const list: Contribution[] = this.features.map((f, j) => ({
      feature: f.name,
      value: featureValueOf(f, values),
      contribution: contributions[offset + j] as number,
    }));
    const reasons = this.topIndexes(contributions, offset, n).map((j, rank) => {
      const c = list[j] as Contribution;
      return { ...c, label: this.labels[j] as string, text: this.text(j, c.value, rank === 0) };
    });
    return { baseline: this.baseline, contributions: list, reasons };
  }
}

/** The customer's value of a feature; a derived ratio's from its inputs (null when one is missing). */
export function featureValueOf(feature: ExplainedFeature, values: Readonly<Record<string, FeatureValue | undefined>>): FeatureValue {
  if (feature.ratio === undefined) return values[feature.name] ?? null;
  const num = values[feature.ratio.numerator];
  const den = values[feature.ratio.denominator];
  if (typeof num !== "number" || typeof den !== "number") return null;
  const d = den + feature.ratio.offset;
  return d === 0 ? 0 : num / d;
}

export function parseLanguage(value: unknown): Language | null {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value) ? (value as Language) : null;
}
