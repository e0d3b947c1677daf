/** SQL quoting for statements built as text (DuckDB: file paths, column names and labels in generated SQL). */
export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
export const quoteLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`;
