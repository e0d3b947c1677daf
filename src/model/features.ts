import type { BundleJson, FeatureSpec } from "./bundle.js";

/**
 * A batch of rows already in graph-input form, one column per feature: numeric columns are Float32Array with
 * NaN for a missing value, categorical columns are string arrays with the bundle's missing token.
 */
export interface FeatureBatch {
  size: number;
  columns: Map<string, Float32Array | string[]>;
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
    const columns = new Map<string, Float32Array | string[]>();
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
