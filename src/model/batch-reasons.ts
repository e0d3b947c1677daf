import type { BundleJson } from "./bundle.js";
import type { CategoryCodes, FeatureBatch, FeatureColumn, FeatureValue } from "./features.js";
import { featureValueOf, type Language, ReasonWriter } from "./reasons.js";

/**
 * `score --reasons N` for one scored batch: each row's top-N reasons as numbers (feature and sentence codes) and,
 * for the store, as the JSON list docs/bundle.md describes. Computed where the contributions are — the inference
 * worker, right after the ONNX call — so they never cross back to the scoring thread (K doubles per row), the
 * scoring thread keeps reading and validating, and no object is made per reason.
 */
export interface BatchReasons {
  n: number;
  /** Per row N codes: explained-feature index + 1, 0 = no reason at that rank; row-major, one row per batch row. */
  featureCodes: Uint8Array;
  /** Per row N sentence codes (+ 1, 0 = none) into the writer's run-wide `codes`. */
  textCodes: Uint32Array;
  /** The writer's sentences first handed out by this batch: codes textBase, textBase + 1, … */
  textBase: number;
  newTexts: string[];
  /** Per row the reasons as stored in scores.reasons (JSON.stringify of {feature, label, value, contribution, text}[]). */
  json: string[] | null;
}

/** JSON.stringify of a number (finite here: contributions and float32 values; anything else is null). */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : "null";
}

/**
 * One run's reason builder. The per-feature JSON fragments and each sentence's JSON string are made once; a row's
 * JSON is then a few concatenations (the customer's value and the contribution are the only per-row numbers).
 */
export class BatchReasonWriter {
  readonly writer: ReasonWriter;
  /** Per feature: `{"feature":…,"label":…,"value":`. */
  private readonly heads: string[];
  /** Per sentence code: `,"text":"…"}`. */
  private readonly tails: string[] = [];
  /** Per categorical feature: dictionary string → its JSON. */
  private readonly quoted = new Map<string, string>();

  constructor(bundle: BundleJson, language: Language) {
    this.writer = new ReasonWriter(bundle, language);
    this.heads = this.writer.features.map((f, j) => `{"feature":${JSON.stringify(f.name)},"label":${JSON.stringify(this.writer.labelOf(j))},"value":`);
  }

  reasons(batch: FeatureBatch, contributions: Float64Array, n: number, json: boolean): BatchReasons {
    const writer = this.writer;
    const features = writer.features;
    const width = features.length;
    const rows = batch.size;
    const missing = writer.missingToken;
    const textBase = writer.codes.length;
    const featureCodes = new Uint8Array(rows * n);
    const textCodes = new Uint32Array(rows * n);
    const out = json ? new Array<string>(rows) : null;
    const columns: (FeatureColumn | undefined)[] = features.map((f) => (f.ratio === undefined ? batch.columns.get(f.name) : undefined));
    const ratioInputs = features.map((f) =>
      f.ratio === undefined ? null : ([batch.columns.get(f.ratio.numerator), batch.columns.get(f.ratio.denominator)] as const),
    );
    const values: Record<string, FeatureValue> = {};
    // A dictionary-coded column's sentence codes by (rank is first, dictionary code), filled as rows meet them: the
    // batch's values are few, so most reasons are an array read instead of a string and a map look-up (textCode).
    const byCode: (Int32Array | undefined)[] = features.map((_, j) => {
      const column = columns[j];
      return column === undefined || column instanceof Float32Array || Array.isArray(column)
        ? undefined
        : new Int32Array(2 * column.dictionary.length).fill(-1);
    });
    for (let r = 0; r < rows; r++) {
      const top = writer.topIndexes(contributions, r * width, n);
      let line = "[";
      for (let rank = 0; rank < top.length; rank++) {
        const j = top[rank] as number;
        const feature = features[j] as (typeof features)[number];
        let value: FeatureValue;
        const inputs = ratioInputs[j];
        if (inputs === null || inputs === undefined) value = valueAt(columns[j], r, missing);
        else {
          const ratio = feature.ratio as NonNullable<typeof feature.ratio>;
          values[ratio.numerator] = valueAt(inputs[0], r, missing);
          values[ratio.denominator] = valueAt(inputs[1], r, missing);
          value = featureValueOf(feature, values);
        }
        const cached = byCode[j];
        let code: number;
        if (cached === undefined) code = writer.textCode(j, value, rank === 0);
        else {
          const slot = 2 * ((columns[j] as CategoryCodes).codes[r] as number) + (rank === 0 ? 0 : 1);
          code = cached[slot] as number;
          if (code < 0) {
            code = writer.textCode(j, value, rank === 0);
            cached[slot] = code;
          }
        }
        featureCodes[r * n + rank] = j + 1;
        textCodes[r * n + rank] = code + 1;
        if (out !== null) {
          let shown: string;
          if (value === null) shown = "null";
          else if (typeof value === "number") shown = jsonNumber(value);
          else {
            let q = this.quoted.get(value);
            if (q === undefined) {
              q = JSON.stringify(value);
              this.quoted.set(value, q);
            }
            shown = q;
          }
          let tail = this.tails[code];
          if (tail === undefined) {
            tail = `,"text":${JSON.stringify(writer.codes[code])}}`;
            this.tails[code] = tail;
          }
          line += `${rank === 0 ? "" : ","}${this.heads[j]}${shown},"contribution":${jsonNumber(contributions[r * width + j] as number)}${tail}`;
        }
      }
      if (out !== null) out[r] = `${line}]`;
    }
    return { n, featureCodes, textCodes, textBase, newTexts: writer.codes.slice(textBase), json: out };
  }
}

/** A feature's value in row `k` of a graph-input column, as the customer gave it (null when missing). */
function valueAt(column: FeatureColumn | undefined, k: number, missingToken: string): FeatureValue {
  if (column === undefined) return null;
  if (column instanceof Float32Array) {
    const v = column[k] as number;
    return Number.isNaN(v) ? null : v;
  }
  const text = Array.isArray(column) ? (column[k] as string) : (column.dictionary[column.codes[k] as number] as string);
  return text === missingToken ? null : text;
}
