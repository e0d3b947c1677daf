/**
 * Column shapes a source may deliver. Most columns are plain value arrays; a source that knows a numeric
 * feature column's values are numbers (a typed Parquet column) hands them over as a Float64Array with a
 * missing-value mask, which spares one JS value per cell at millions of rows.
 */
export interface NumberColumn {
  readonly kind: "numbers";
  readonly values: Float64Array;
  /** 1 where the value is missing (SQL NULL); null when no value is missing. */
  readonly missing: Uint8Array | null;
}

/**
 * A categorical feature column matched against the model's categories by the reader: codes[i] = k > 0 means
 * categories[k - 1]; 0 means the value is not one of them, and `raw` holds it (null when missing), for
 * validation to judge and name. No JS string is made per cell.
 */
export interface CodeColumn {
  readonly kind: "codes";
  readonly codes: Int32Array;
  readonly categories: readonly string[];
  readonly raw: ReadonlyMap<number, unknown>;
}

export type ColumnValues = readonly unknown[] | NumberColumn | CodeColumn;

export function isNumberColumn(column: ColumnValues): column is NumberColumn {
  return !Array.isArray(column) && (column as NumberColumn | CodeColumn).kind === "numbers";
}

export function isCodeColumn(column: ColumnValues): column is CodeColumn {
  return !Array.isArray(column) && (column as NumberColumn | CodeColumn).kind === "codes";
}

/** The value of one cell as a plain JS value (null for missing), whatever the column's shape. */
export function cellOf(column: ColumnValues, index: number): unknown {
  if (isNumberColumn(column)) return column.missing !== null && column.missing[index] === 1 ? null : column.values[index];
  if (isCodeColumn(column)) {
    const code = column.codes[index] as number;
    return code > 0 ? column.categories[code - 1] : (column.raw.get(index) ?? null);
  }
  return (column as readonly unknown[])[index];
}

/**
 * What a reader may assume about the model's columns, so it can read them in their cheapest form: numeric
 * features as numbers, categorical features as one of their known categories (anything else arrives as
 * the raw value, for validation to name).
 */
export interface ColumnHints {
  numeric: ReadonlySet<string>;
  categories: ReadonlyMap<string, readonly string[]>;
}
