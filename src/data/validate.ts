import type { BundleJson, CategoricalFeatureSpec, FeatureSpec, NumericFeatureSpec } from "../model/bundle.js";
import type { CategoryCodes, FeatureBatch, FeatureColumn, FeatureValue } from "../model/features.js";
import { type CodeColumn, type ColumnValues, cellOf, isCodeColumn, isNumberColumn, type NumberColumn } from "./columns.js";

export type ViolationCode = "missing" | "wrong_type" | "not_finite" | "not_integer" | "below_minimum" | "above_maximum" | "unseen_category";

/** Why one field of one row cannot be scored: names the field and says what was expected. */
export interface Violation {
  field: string;
  code: ViolationCode;
  message: string;
  expected: string;
}

export interface ValidateOptions {
  /**
   * Accept numbers written as text ("12.5"), as CSV files carry them, and blank text as missing.
   * JSON clients get no such leniency: a number must be a JSON number.
   */
  textNumbers: boolean;
}

type Checked = { ok: true; value: FeatureValue } | { ok: false; violation: Violation };

function isMissing(v: unknown, textNumbers: boolean): boolean {
  return v === null || v === undefined || (textNumbers && typeof v === "string" && v.trim() === "");
}

function describeNumeric(f: NumericFeatureSpec): string {
  const kind = f.integer ? "an integer" : "a number";
  const lo = f.lower_bound ?? null;
  const hi = f.upper_bound ?? null;
  if (lo !== null && hi !== null) return `${kind} from ${lo} to ${hi}`;
  if (lo !== null) return `${kind} >= ${lo}`;
  if (hi !== null) return `${kind} <= ${hi}`;
  return kind;
}

function describeCategorical(f: CategoricalFeatureSpec): string {
  const shown = f.categories.slice(0, 12).map((c) => JSON.stringify(c));
  return `one of ${shown.join(", ")}${f.categories.length > 12 ? `, … (${f.categories.length} in all)` : ""}`;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return String(v);
  return typeof v === "object" ? (JSON.stringify(v)?.slice(0, 40) ?? String(v)) : String(v);
}

function checkNumeric(f: NumericFeatureSpec, v: unknown, opts: ValidateOptions): Checked {
  // The description is built only for a failure: this runs for every value of every row.
  const fail = (code: ViolationCode, what: string): Checked => {
    const expected = describeNumeric(f);
    return { ok: false, violation: { field: f.name, code, message: `${f.name}: ${what} (expected ${expected})`, expected } };
  };
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "bigint") n = Number(v);
  else if (opts.textNumbers && typeof v === "string") {
    const t = v.trim();
    n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : Number.NaN;
    if (Number.isNaN(n)) return fail("wrong_type", `${show(v)} is not a number`);
  } else return fail("wrong_type", `${show(v)} is ${typeof v === "string" ? "text" : `a ${typeof v}`}, not a number`);
  if (!Number.isFinite(n)) return fail("not_finite", `${show(v)} is not a finite number`);
  if (f.integer && !Number.isInteger(n)) return fail("not_integer", `${n} is not a whole number`);
  if (f.lower_bound !== null && f.lower_bound !== undefined && n < f.lower_bound) return fail("below_minimum", `${n} is below the minimum ${f.lower_bound}`);
  if (f.upper_bound !== null && f.upper_bound !== undefined && n > f.upper_bound) return fail("above_maximum", `${n} is above the maximum ${f.upper_bound}`);
  return { ok: true, value: n };
}

function checkCategorical(f: CategoricalFeatureSpec, allowed: ReadonlySet<string>, v: unknown, opts: ValidateOptions): Checked {
  let s: string;
  if (typeof v === "string") s = v;
  else if (opts.textNumbers && (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean")) s = String(v);
  else {
    const expected = describeCategorical(f);
    return {
      ok: false,
      violation: { field: f.name, code: "wrong_type", message: `${f.name}: ${show(v)} is a ${typeof v}, not text (expected ${expected})`, expected },
    };
  }
  if (!allowed.has(s)) {
    const expected = describeCategorical(f);
    return {
      ok: false,
      violation: {
        field: f.name,
        code: "unseen_category",
        message: `${f.name}: ${show(s)} is a category the model never saw (expected ${expected})`,
        expected,
      },
    };
  }
  return { ok: true, value: s };
}

/**
 * Checks values against a bundle's input schema. Built once per model, then applied to every row:
 * the allowed-category sets are computed here, not per value.
 */
export class RowValidator {
  private readonly categories = new Map<string, ReadonlySet<string>>();

  constructor(readonly bundle: BundleJson) {
    for (const f of bundle.schema.features) if (f.kind === "categorical") this.categories.set(f.name, new Set(f.categories));
  }

  get features(): readonly FeatureSpec[] {
    return this.bundle.schema.features;
  }

  /** One value of one feature: the normalized value, or why it cannot be scored. */
  check(f: FeatureSpec, v: unknown, opts: ValidateOptions): Checked {
    if (isMissing(v, opts.textNumbers)) {
      if (!f.required) return { ok: true, value: null };
      const expected = f.kind === "numeric" ? describeNumeric(f) : describeCategorical(f);
      return { ok: false, violation: { field: f.name, code: "missing", message: `${f.name}: a value is required (expected ${expected})`, expected } };
    }
    if (f.kind === "numeric") return checkNumeric(f, v, opts);
    return checkCategorical(f, this.categories.get(f.name) ?? new Set(), v, opts);
  }

  /** Every violation of one record (not just the first), or its feature values. */
  checkRecord(
    record: Readonly<Record<string, unknown>>,
    opts: ValidateOptions,
  ): { ok: true; row: Record<string, FeatureValue> } | { ok: false; violations: Violation[] } {
    const row: Record<string, FeatureValue> = {};
    const violations: Violation[] = [];
    for (const f of this.features) {
      const c = this.check(f, record[f.name], opts);
      if (c.ok) row[f.name] = c.value;
      else violations.push(c.violation);
    }
    return violations.length === 0 ? { ok: true, row } : { ok: false, violations };
  }

  /**
   * Validate a column-oriented chunk (as readers deliver it). Good rows become a FeatureBatch in their
   * original order; bad rows come back with all their reasons. No row is dropped silently.
   */
  checkChunk(columns: ReadonlyMap<string, ColumnValues>, size: number, opts: ValidateOptions): ChunkValidation {
    const reasons: (Violation[] | undefined)[] = new Array(size);
    const normalized = new Map<string, FeatureColumn>();
    const missingToken = this.bundle.schema.missing_token;
    for (const f of this.features) {
      const values = columns.get(f.name);
      if (values === undefined) throw new Error(`chunk lacks column ${f.name}`);
      if (f.kind === "categorical" && isCodeColumn(values)) {
        normalized.set(f.name, this.checkCodes(f, values, size, reasons, opts));
        continue;
      }
      const out: Float32Array | string[] = f.kind === "numeric" ? new Float32Array(size) : new Array<string>(size);
      const take = (i: number, c: Checked): void => {
        if (!c.ok) addViolation(reasons, i, c.violation);
        else if (f.kind === "numeric") (out as Float32Array)[i] = c.value === null ? Number.NaN : (c.value as number);
        else (out as string[])[i] = c.value === null ? missingToken : (c.value as string);
      };
      if (f.kind === "numeric" && isNumberColumn(values)) this.checkNumbers(f, values, size, out as Float32Array, take, opts);
      else for (let i = 0; i < size; i++) take(i, this.check(f, cellOf(values, i), opts));
      normalized.set(f.name, out);
    }
    const goodRows: number[] = [];
    const badRows: { index: number; violations: Violation[] }[] = [];
    for (let i = 0; i < size; i++) {
      const bad = reasons[i];
      if (bad === undefined) goodRows.push(i);
      else badRows.push({ index: i, violations: bad });
    }
    if (badRows.length === 0) return { batch: { size, columns: normalized }, goodRows, badRows };
    const compacted = new Map<string, FeatureColumn>();
    for (const [name, col] of normalized) {
      if (col instanceof Float32Array)
        compacted.set(
          name,
          Float32Array.from(goodRows, (i) => col[i] ?? Number.NaN),
        );
      else if (Array.isArray(col))
        compacted.set(
          name,
          goodRows.map((i) => col[i] ?? missingToken),
        );
      else compacted.set(name, { kind: "codes", codes: Uint16Array.from(goodRows, (i) => col.codes[i] as number), dictionary: col.dictionary });
    }
    return { batch: { size: goodRows.length, columns: compacted }, goodRows, badRows };
  }

  /**
   * A categorical column the reader already matched against the model's categories: a known category is
   * accepted by its code alone; anything else goes through check() so its violation reads as for any source.
   */
  private checkCodes(f: CategoricalFeatureSpec, column: CodeColumn, size: number, reasons: (Violation[] | undefined)[], opts: ValidateOptions): CategoryCodes {
    // Dictionary: the reader's categories (code k → index k - 1), then the missing token, then anything else
    // check() accepts (in practice nothing: only exact matches pass, and those already have codes).
    const dictionary = [...column.categories, this.bundle.schema.missing_token];
    const extra = new Map<string, number>();
    const codes = new Uint16Array(size);
    if (dictionary.length > 65_535) throw new Error(`${f.name}: more categories than a code column holds`);
    for (let i = 0; i < size; i++) {
      const code = column.codes[i] as number;
      if (code > 0) {
        codes[i] = code - 1;
        continue;
      }
      const c = this.check(f, column.raw.get(i) ?? null, opts);
      if (!c.ok) addViolation(reasons, i, c.violation);
      else if (c.value === null) codes[i] = column.categories.length;
      else {
        const value = String(c.value);
        let index = extra.get(value);
        if (index === undefined) {
          index = dictionary.push(value) - 1;
          extra.set(value, index);
        }
        codes[i] = index;
      }
    }
    return { kind: "codes", codes, dictionary };
  }

  /**
   * A typed numeric column: the common case (present, finite, in range) is decided inline; anything else goes
   * through check() so its violation reads exactly as for any other source.
   */
  private checkNumbers(
    f: NumericFeatureSpec,
    column: NumberColumn,
    size: number,
    out: Float32Array,
    take: (i: number, c: Checked) => void,
    opts: ValidateOptions,
  ): void {
    const lo = f.lower_bound ?? Number.NEGATIVE_INFINITY;
    const hi = f.upper_bound ?? Number.POSITIVE_INFINITY;
    const { values, missing } = column;
    for (let i = 0; i < size; i++) {
      const n = values[i] as number;
      const absent = missing !== null && missing[i] === 1;
      if (!absent && n >= lo && n <= hi && Number.isFinite(n) && (!f.integer || Number.isInteger(n))) out[i] = n;
      else take(i, this.check(f, absent ? null : n, opts));
    }
  }
}

/** Record one more reason why row i of a chunk cannot be scored. */
function addViolation(reasons: (Violation[] | undefined)[], i: number, violation: Violation): void {
  const list = reasons[i] ?? [];
  list.push(violation);
  reasons[i] = list;
}

export interface ChunkValidation {
  batch: FeatureBatch;
  /** Indexes (within the chunk) of the rows in `batch`, in order. */
  goodRows: number[];
  badRows: { index: number; violations: Violation[] }[];
}

export function describeViolations(violations: readonly Violation[]): string {
  return violations.map((v) => v.message).join("; ");
}
