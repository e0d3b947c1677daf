import type { BundleJson, FeatureSpec } from "./bundle.js";

/**
 * A categorical column as indexes into a small dictionary of its distinct values: what batch scoring hands to
 * the inference worker (a typed array crosses threads without copying each string).
 */
export interface CategoryCodes {
  kind: "codes";
  codes: Uint16Array;
  dictionary: string[];
}

export type FeatureColumn = Float32Array | string[] | CategoryCodes;

/**
 * A batch of rows already in graph-input form, one column per feature: numeric columns are Float32Array with
 * NaN for a missing value, categorical columns are strings (or codes into strings) with the bundle's missing
 * token for a missing value.
 */
export interface FeatureBatch {
  size: number;
  columns: Map<string, FeatureColumn>;
}

/** A categorical column as the string array the graph takes. */
export function categoryStrings(column: string[] | CategoryCodes): string[] {
  if (Array.isArray(column)) return column;
  const { codes, dictionary } = column;
  const out = new Array<string>(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = dictionary[codes[i] as number] as string;
  return out;
}

export type FeatureValue = number | string | null;

/** Column builder that grows one row at a time; used by validation and by the golden check. */
export class FeatureBatchBuilder {
  private readonly numeric = new Map<string, number[]>();
  private readonly categorical = new Map<string, string[]>();
  private count = 0;

  constructor(
    private readonly features: readonly FeatureSpec[],
    private readonly missingToken: string,
  ) {
    for (const f of features) {
      if (f.kind === "numeric") this.numeric.set(f.name, []);
      else this.categorical.set(f.name, []);
    }
  }

  /** Append a row whose values are already known to be acceptable (or deliberately raw, for golden rows). */
  push(row: Readonly<Record<string, FeatureValue | undefined>>): void {
    for (const f of this.features) {
      const v = row[f.name];
      if (f.kind === "numeric") {
        this.numeric.get(f.name)?.push(v === null || v === undefined || v === "" ? Number.NaN : Number(v));
      } else {
        this.categorical.get(f.name)?.push(v === null || v === undefined || v === "" ? this.missingToken : String(v));
      }
    }
    this.count++;
  }

  get size(): number {
    return this.count;
  }

  build(): FeatureBatch {
    const columns = new Map<string, FeatureColumn>();
    for (const [name, values] of this.numeric) columns.set(name, Float32Array.from(values));
    for (const [name, values] of this.categorical) columns.set(name, values);
    return { size: this.count, columns };
  }
}

export function batchFromRows(bundle: BundleJson, rows: readonly Readonly<Record<string, FeatureValue | undefined>>[]): FeatureBatch {
  const builder = new FeatureBatchBuilder(bundle.schema.features, bundle.schema.missing_token);
  for (const row of rows) builder.push(row);
  return builder.build();
}
