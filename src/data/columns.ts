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

export type ColumnValues = readonly unknown[] | NumberColumn;

export function isNumberColumn(column: ColumnValues): column is NumberColumn {
  return !Array.isArray(column);
}

/** The value of one cell as a plain JS value (null for missing), whatever the column's shape. */
export function cellOf(column: ColumnValues, index: number): unknown {
  if (!isNumberColumn(column)) return column[index];
  return column.missing !== null && column.missing[index] === 1 ? null : column.values[index];
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
