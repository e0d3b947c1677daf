import { RowValidator, unstorableId } from "../data/validate.js";
import type { BundleJson } from "../model/bundle.js";
import type { FeatureValue } from "../model/features.js";
import { ID_MAX_LENGTH, idFieldOf } from "./schema.js";

/** Why a request cannot be scored: the field path (e.g. `customers[3].tenure`) and what was expected. */
export interface ApiViolation {
  field: string;
  code: string;
  message: string;
  expected?: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; violations: ApiViolation[] };

/** The largest number of violations one answer lists; a 1,000-row batch of garbage must not answer megabytes. */
export const MAX_VIOLATIONS = 100;

function at(path: string, field: string): string {
  return path === "" ? field : `${path}.${field}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The customer id as text, from a non-empty string or a safe integer. */
export function parseCustomerId(value: unknown, field: string): Checked<string> {
  const expected = `text of 1 to ${ID_MAX_LENGTH} characters, or a whole number`;
  const fail = (code: string, what: string): Checked<string> => ({
    ok: false,
    violations: [{ field, code, message: `${field}: ${what} (expected ${expected})`, expected }],
  });
  if (value === undefined || value === null) return fail("missing", "a customer id is required");
  if (typeof value === "string") {
    if (value.length === 0) return fail("missing", "a customer id is required");
    if (value.length > ID_MAX_LENGTH) return fail("too_long", `${value.length} characters is too long`);
    const unstorable = unstorableId(value);
    if (unstorable !== null) return fail("unstorable_text", unstorable);
    return { ok: true, value };
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) return fail(Number.isInteger(value) ? "above_maximum" : "not_integer", `${value} is not an exact whole number`);
    return { ok: true, value: String(value) };
  }
  return fail("wrong_type", `a ${Array.isArray(value) ? "list" : typeof value} is not an id`);
}

/**
 * Checks one customer record against one model's input schema: the bundle's row rules (shared with batch
 * scoring: types, bounds, float32 range, blank as missing), plus what only a JSON API meets: unknown fields.
 */
export class CustomerValidator {
  readonly idField: string;
  private readonly rows: RowValidator;
  private readonly known: ReadonlySet<string>;

  constructor(
    readonly bundle: BundleJson,
    private readonly unknownFields: "reject" | "ignore",
  ) {
    this.rows = new RowValidator(bundle);
    this.idField = idFieldOf(bundle);
    this.known = new Set([this.idField, ...bundle.schema.features.map((f) => f.name)]);
  }

  /** The feature values of a record whose id was already read, or every reason it cannot be scored. */
  check(record: Readonly<Record<string, unknown>>, path: string): Checked<Record<string, FeatureValue>> {
    const violations: ApiViolation[] = [];
    const checked = this.rows.checkRecord(record, { textNumbers: false });
    if (!checked.ok) {
      for (const v of checked.violations) violations.push({ ...v, field: at(path, v.field), message: path === "" ? v.message : `${path}.${v.message}` });
    }
    if (this.unknownFields === "reject") {
      for (const key of Object.keys(record)) {
        if (this.known.has(key)) continue;
        const expected = `only the model's fields: ${[...this.known].join(", ")}`;
        violations.push({ field: at(path, key), code: "unknown_field", message: `${at(path, key)}: the model has no such field`, expected });
      }
    }
    return checked.ok && violations.length === 0 ? { ok: true, value: checked.row } : { ok: false, violations };
  }
}
