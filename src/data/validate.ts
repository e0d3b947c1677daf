import type { BundleJson, CategoricalFeatureSpec, FeatureSpec, NumericFeatureSpec } from "../model/bundle.js";
import type { CategoryCodes, FeatureBatch, FeatureColumn, FeatureValue } from "../model/features.js";
import { type CodeColumn, type ColumnValues, cellOf, isCodeColumn, isNumberColumn, type NumberColumn } from "./columns.js";

export type ViolationCode = "missing" | "wrong_type" | "not_finite" | "not_integer" | "below_minimum" | "above_maximum" | "unseen_category" | "unstorable_text";

/** ONNX feeds numeric features as float32: a larger magnitude would reach the graph as ±Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The largest magnitude a numeric feature may have, on every path (API and batch): float32's range, and for
 * integers the range a double carries exactly (a larger integer was already rounded before any bound is checked).
 */
export function magnitudeLimit(integer: boolean): number {
  return integer ? Number.MAX_SAFE_INTEGER : FLOAT32_MAX;
}

/**
 * Blank text (nothing but ECMAScript white space, the set `String.prototype.trim` removes) means "missing" on
 * every path, as it does in training: a CSV cell has no other way to say it, and a JSON client sending "" means
 * the same. The characters are listed so the OpenAPI document can state exactly this set.
 */
export const BLANK_CHARACTERS = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";
const BLANK = new RegExp(`^[${BLANK_CHARACTERS}]*$`);

/**
 * Why a customer id cannot be stored, or null: PostgreSQL text cannot hold NUL (U+0000), and an id the store
 * refuses would fail the whole write it is part of. The API and batch scoring ask this same question.
 */
export function unstorableId(id: string): string | null {
  return id.includes("\u0000") ? "contains a NUL character (U+0000), which no store can hold as text" : null;
}

/** Why one field of one row cannot be scored: names the field and says what was expected. */
export interface Violation {
  field: string;
  code: ViolationCode;
  message: string;
  expected: string;
}

export interface ValidateOptions {
  /**
   * Accept numbers written as text ("12.5"), as CSV files carry them. JSON clients get no such leniency: a
   * number must be a JSON number. (Blank text is missing either way.)
   */
  textNumbers: boolean;
}

type Checked = { ok: true; value: FeatureValue } | { ok: false; violation: Violation };

function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === "string" && BLANK.test(v));
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
  return String(v);
}

/**
 * What a value of the wrong type is. Lists and objects are named by their shape, never serialised: a client may
 * send them nested thousands deep, and stringifying that overflowed the stack (a 500).
 */
function whatIs(v: unknown): string {
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === "object" && v !== null) return "an object";
  return typeof v === "string" ? `${show(v)} is text` : `${show(v)} is a ${typeof v}`;
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
  } else return fail("wrong_type", `${whatIs(v)}, not a number`);
  if (!Number.isFinite(n)) return fail("not_finite", `${show(v)} is not a finite number`);
  const limit = magnitudeLimit(f.integer);
  if (Math.abs(n) > limit) {
    return fail(n > 0 ? "above_maximum" : "below_minimum", `${show(v)} is beyond what the model computes exactly (a number within ±${limit})`);
  }
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
      violation: { field: f.name, code: "wrong_type", message: `${f.name}: ${whatIs(v)}, not text (expected ${expected})`, expected },
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
    if (isMissing(v)) {
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
    this.checkIds(columns, size, reasons);
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

  /** Ids the store cannot hold make their row bad here, as the API refuses them (see unstorableId). */
  private checkIds(columns: ReadonlyMap<string, ColumnValues>, size: number, reasons: (Violation[] | undefined)[]): void {
    const idColumn = this.bundle.schema.id_column;
    const ids = idColumn === null ? undefined : columns.get(idColumn);
    if (idColumn === null || ids === undefined) return;
    for (let i = 0; i < size; i++) {
      const id = cellOf(ids, i);
      const why = typeof id === "string" ? unstorableId(id) : null;
      if (why === null) continue;
      const expected = "text without NUL characters";
      addViolation(reasons, i, {
        field: idColumn,
        code: "unstorable_text",
        message: `${idColumn}: the customer id ${show(id)} ${why} (expected ${expected})`,
        expected,
      });
    }
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
    const limit = magnitudeLimit(f.integer);
    const lo = Math.max(f.lower_bound ?? -limit, -limit);
    const hi = Math.min(f.upper_bound ?? limit, limit);
    const { values, missing } = column;
    for (let i = 0; i < size; i++) {
      const n = values[i] as number;
      const absent = missing !== null && missing[i] === 1;
      if (!absent && n >= lo && n <= hi && (!f.integer || Number.isInteger(n))) out[i] = n;
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
