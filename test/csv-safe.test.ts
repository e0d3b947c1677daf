import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { csvCell, csvSafeSql } from "../src/csv-safe.js";

const CASES: [string, string][] = [
  ['=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'],
  ["+1+2", "'+1+2"],
  ["-2+3", "'-2+3"],
  ["@SUM(A1)", "'@SUM(A1)"],
  ["\tcmd", "'\tcmd"],
  ["-1.5", "-1.5"],
  ["+3e5", "+3e5"],
  ["c-001", "c-001"],
  ["plain", "plain"],
];

describe("CSV cells", () => {
  it.each(CASES)("writes the text %j so a spreadsheet shows it as text: %j", (text, safe) => {
    expect(csvCell(text)).toBe(/[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe);
  });

  it("leaves numbers and nulls alone", () => {
    expect(csvCell(-3)).toBe("-3");
    expect(csvCell(null)).toBe("");
  });

  it("applies the same rule in DuckDB SQL (for files written with COPY)", async () => {
    const instance = await DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    try {
      for (const [text, safe] of CASES) {
        const literal = `'${text.replaceAll("'", "''")}'`;
        const row = (await conn.runAndReadAll(`SELECT ${csvSafeSql(literal)} AS v`)).getRowObjects()[0] as { v: string };
        expect(row.v, text).toBe(safe);
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });
});
