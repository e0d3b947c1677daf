import { type ColumnValues, cellOf } from "./columns.js";

/**
 * The one text form of a customer id, on every path (scoring, the duplicate scan, the resume fingerprint).
 * Numbers are spelled as JavaScript spells them, so a Parquet DOUBLE or DECIMAL id 1.0 is "1" whether
 * DuckDB found it duplicated or the scorer stored it (DuckDB's own CAST says "1.0", which let duplicates
 * through). Text ids stay as they are: "1.0" and "1" in a text column are different customers.
 */
export function canonicalId(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === "object" ? decimalText(value) : String(value);
  return text.trim() === "" ? null : text;
}

/** A DuckDB decimal (or other value object) as a number's text when it is one, else its own text. */
function decimalText(value: object): string {
  const maybe = value as { toDouble?: () => number };
  return typeof maybe.toDouble === "function" ? String(maybe.toDouble()) : String(value);
}

/** The canonical id of row `index` of an id column, null when it is missing or blank. */
export function idAt(column: ColumnValues, index: number): string | null {
  return canonicalId(cellOf(column, index));
}
