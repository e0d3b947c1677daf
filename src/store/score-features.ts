import { type RawBuilder, sql } from "kysely";
import type { FeatureBatch } from "../model/features.js";
import type { Dialect } from "./db.js";

/**
 * A score's categorical inputs, stored compactly with it (`score_rows.features`, the `scores` view's `features`;
 * migration 020; docs/store.md "Categorical inputs"):
 *
 *   byte i = the index of the row's value in `categories` of the i-th categorical feature of the run's bundle
 *            (bundle.json `schema.features`, in order, numeric features skipped);
 *   0xFF   = missing (the bundle's missing token, an empty cell) or a value the bundle does not list.
 *
 * The blob has exactly one byte per categorical feature; null for scores stored without it (before 020, or by a
 * writer that does not keep them, e.g. the Spark JDBC writer). A feature with more than 255 categories keeps
 * 0xFF for the values past index 254.
 */
export const MISSING_CODE = 0xff;

export interface CategoricalFeature {
  name: string;
  categories: readonly string[];
}

interface BundleFeatures {
  schema: {
    missing_token?: string;
    features: readonly ({ name: string; kind: "categorical"; categories: readonly string[] } | { name: string; kind: "numeric" })[];
  };
}

/** The bundle's categorical features in stored order: byte i of `features` is feature i of this list. */
export function storedCategoricalFeatures(bundle: BundleFeatures): CategoricalFeature[] {
  return bundle.schema.features.flatMap((f) => (f.kind === "categorical" ? [{ name: f.name, categories: f.categories }] : []));
}

/** A decoded blob: feature name → its value (a category of the bundle), or null when missing or unknown. */
export type StoredCategories = Record<string, string | null>;

/** Decode one score's `features` against the run's bundle; null for a score stored without them. */
export function decodeFeatures(blob: Uint8Array | null | undefined, features: readonly CategoricalFeature[]): StoredCategories | null {
  if (blob === null || blob === undefined) return null;
  if (blob.length !== features.length)
    throw new Error(`stored categorical inputs have ${blob.length} bytes; the bundle has ${features.length} categorical features (another bundle's run?)`);
  const out: StoredCategories = {};
  for (let i = 0; i < features.length; i++) {
    const f = features[i] as CategoricalFeature;
    const code = blob[i] as number;
    out[f.name] = code === MISSING_CODE ? null : (f.categories[code] ?? null);
  }
  return out;
}

/** Where a feature's value sits in the blob and its code: what a filter on the stored scores compares. */
export function featureCode(features: readonly CategoricalFeature[], name: string, value: string | null): { byte: number; code: number } {
  const byte = features.findIndex((f) => f.name === name);
  if (byte < 0) throw new Error(`${name} is not a categorical feature of this bundle (${features.map((f) => f.name).join(", ")})`);
  if (value === null) return { byte, code: MISSING_CODE };
  const code = (features[byte] as CategoricalFeature).categories.indexOf(value);
  if (code < 0 || code >= MISSING_CODE) throw new Error(`${name}: ${value} is not one of the bundle's categories`);
  return { byte, code };
}

/** A SQL condition "byte `byte` of features is `code`" for a query on `scores` (or score_rows), in either dialect. */
export function featureCondition(dialect: Dialect, column: string, byte: number, code: number): RawBuilder<boolean> {
  const ref = sql.ref(column);
  // SQLite: substr of a BLOB counts bytes (from 1).
  if (dialect === "sqlite") return sql<boolean>`substr(${ref}, ${byte + 1}, 1) = ${Buffer.from([code])}`;
  // PostgreSQL: written exactly as migration 027's statistics (position and value as literals, both integers
  // checked here), so the planner knows how many rows a value has; substring, unlike get_byte, is never an error
  // on a blob shorter than the position.
  if (!Number.isInteger(byte) || byte < 0 || !Number.isInteger(code) || code < 0 || code > 255)
    throw new Error(`feature byte ${byte} / code ${code} out of range`);
  return sql<boolean>`substring(${ref} FROM ${sql.raw(String(byte + 1))} FOR 1) = ${sql.raw(`'\\x${code.toString(16).padStart(2, "0")}'::bytea`)}`;
}

/**
 * Encode a batch's categorical inputs (before inference: the batch's typed arrays move to the inference thread).
 * Row-major, `features.length` bytes per batch row.
 */
export function encodeFeatures(features: readonly CategoricalFeature[], missingToken: string, batch: FeatureBatch): Uint8Array {
  const width = features.length;
  const rows = batch.size;
  const out = new Uint8Array(rows * width).fill(MISSING_CODE);
  for (let i = 0; i < width; i++) {
    const f = features[i] as CategoricalFeature;
    const index = new Map<string, number>();
    f.categories.forEach((c, k) => {
      if (k < MISSING_CODE && c !== missingToken) index.set(c, k);
    });
    const column = batch.columns.get(f.name);
    if (column === undefined || column instanceof Float32Array) continue;
    if (Array.isArray(column)) {
      for (let r = 0; r < rows; r++) out[r * width + i] = index.get(column[r] as string) ?? MISSING_CODE;
    } else {
      const byDictionary = Uint8Array.from(column.dictionary, (v) => index.get(v) ?? MISSING_CODE);
      const codes = column.codes;
      for (let r = 0; r < rows; r++) out[r * width + i] = byDictionary[codes[r] as number] as number;
    }
  }
  return out;
}

/** The encoded rows of the kept (stored) rows, in score order. */
export function keptFeatures(encoded: Uint8Array, width: number, keptRows: readonly number[]): Uint8Array {
  const out = new Uint8Array(keptRows.length * width);
  for (let r = 0; r < keptRows.length; r++) {
    const k = keptRows[r] as number;
    out.set(encoded.subarray(k * width, (k + 1) * width), r * width);
  }
  return out;
}
