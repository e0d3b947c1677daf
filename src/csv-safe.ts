/**
 * CSV cells that a spreadsheet opens safely. Text beginning with `=`, `+`, `-`, `@` (or a tab / carriage return)
 * is run as a formula by Excel, LibreOffice and Google Sheets (CSV injection, OWASP): such a cell gets a leading
 * `'`, which spreadsheets show as text. Numbers stay numbers, so `-1.5` is written as it is.
 * Every CSV writer uses this: campaign exports, the risk review, and `score --out x.csv` (through csvSafeSql).
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) && !NUMBER.test(text) ? `'${text}` : text;
}

/** One CSV cell: empty for null, quoted when it holds a quote, comma or line break, formulas neutralised. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? neutraliseFormula(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The same rule as a DuckDB SQL expression over a VARCHAR expression, for CSV files written with COPY. */
export function csvSafeSql(expression: string): string {
  return `CASE WHEN regexp_matches(${expression}, '^[=+\\-@\\t\\r]') AND NOT regexp_matches(${expression}, '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$') THEN '''' || ${expression} ELSE ${expression} END`;
}
