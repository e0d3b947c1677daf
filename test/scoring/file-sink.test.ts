import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { codeScores, ScoreFileSink } from "../../src/scoring/file-sink.js";
import type { ScoreColumns, ScoreRow } from "../../src/store/runs.js";

async function readBack(path: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  // Read as text and cast, so CSV's type sniffing cannot change what is compared.
  const from = path.endsWith(".csv") ? `read_csv('${path}', all_varchar = true)` : `'${path}'`;
  const reader = await conn.runAndReadAll(
    `SELECT run_id::VARCHAR AS run_id, customer_id::VARCHAR AS customer_id, probability::DOUBLE AS probability, band::VARCHAR AS band, decision::BOOLEAN AS decision, model_name::VARCHAR AS model_name, model_version::VARCHAR AS model_version, scored_at::VARCHAR AS scored_at FROM ${from}`,
  );
  const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
  conn.closeSync();
  instance.closeSync();
  return rows;
}

function columns(part: number, n: number): ScoreColumns {
  const bands = ["high", "medium", "low"];
  return {
    runId: `run-${part}`,
    modelName: "churn",
    modelVersion: String(part),
    scoredAt: `2026-01-0${part}T00:00:00.000Z`,
    customerIds: Array.from({ length: n }, (_, i) => `p${part}-c${i}`),
    probabilities: Float64Array.from({ length: n }, (_, i) => (i % 100) / 100 + 0.001),
    bands: Array.from({ length: n }, (_, i) => bands[(i + part) % 3] as string),
    decisions: Uint8Array.from({ length: n }, (_, i) => i % 2),
  };
}

describe("score file sink", () => {
  // Rows cross DuckDB's 2,048-row vectors and mix both ways in; labels come back from codes, in order.
  for (const ext of ["parquet", "csv"]) {
    it(`writes every row in the order given, with its own run, model, time and band (${ext})`, async () => {
      const path = join(mkdtempSync(join(tmpdir(), "churnops-sink-")), `scores.${ext}`);
      const sink = await ScoreFileSink.open(path);
      const first = columns(1, 5000);
      sink.appendCoded(codeScores(first));
      const exported: ScoreRow[] = [
        {
          run_id: "old",
          customer_id: "x1",
          probability: 0.9,
          band: "critical",
          decision: 1,
          model_name: "legacy",
          model_version: "7",
          scored_at: "2025-12-31T00:00:00.000Z",
        },
        {
          run_id: "old",
          customer_id: "x2",
          probability: 0.1,
          band: "low",
          decision: 0,
          model_name: "legacy",
          model_version: "8",
          scored_at: "2025-12-31T00:00:00.000Z",
        },
      ];
      sink.appendRows(exported);
      const second = columns(2, 3);
      sink.appendCoded(codeScores(second));
      expect(sink.count).toBe(5005);
      await sink.close();

      const rows = await readBack(path);
      expect(rows).toHaveLength(5005);
      const expected = [
        ...first.customerIds.map((_, i) => ({ part: first, i })),
        ...exported.map((r) => r),
        ...second.customerIds.map((_, i) => ({ part: second, i })),
      ].map((e) =>
        "part" in e
          ? {
              run_id: e.part.runId,
              customer_id: e.part.customerIds[e.i],
              probability: e.part.probabilities[e.i],
              band: e.part.bands[e.i],
              decision: e.part.decisions[e.i] === 1,
              model_name: e.part.modelName,
              model_version: e.part.modelVersion,
              scored_at: e.part.scoredAt,
            }
          : { ...e, decision: e.decision === 1 },
      );
      expect(rows.map((r) => r.customer_id)).toEqual(expected.map((r) => r.customer_id));
      expect(rows).toEqual(expected);
    });
  }

  // A run whose every row was quarantined still leaves a file: the header (CSV) or schema (Parquet), no rows.
  for (const ext of ["parquet", "csv"]) {
    it(`writes an empty file when nothing was scored (${ext})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "churnops-sink-"));
      const untouched = await ScoreFileSink.open(join(dir, `none.${ext}`));
      await untouched.close();
      const emptyChunk = await ScoreFileSink.open(join(dir, `empty.${ext}`));
      emptyChunk.appendCoded(codeScores(columns(1, 0)));
      await emptyChunk.close();
      for (const name of ["none", "empty"]) expect(await readBack(join(dir, `${name}.${ext}`))).toEqual([]);
    });
  }
});

describe("score file sink, CSV cells", () => {
  it("neutralises ids a spreadsheet would run as formulas, and leaves numbers and Parquet alone", async () => {
    const ids = ['=HYPERLINK("http://x")', "+cmd", "@SUM(A1)", "-5", "c-1"];
    const scores: ScoreColumns = {
      runId: "run-1",
      modelName: "churn",
      modelVersion: "1",
      scoredAt: "2026-01-01T00:00:00.000Z",
      customerIds: ids,
      probabilities: Float64Array.from(ids, () => 0.5),
      bands: ids.map(() => "medium"),
      decisions: Uint8Array.from(ids, () => 1),
    };
    const dir = mkdtempSync(join(tmpdir(), "churnops-sink-"));
    for (const ext of ["csv", "parquet"]) {
      const sink = await ScoreFileSink.open(join(dir, `s.${ext}`));
      sink.appendCoded(codeScores(scores));
      await sink.close();
    }
    expect((await readBack(join(dir, "s.csv"))).map((r) => r.customer_id)).toEqual(['\'=HYPERLINK("http://x")', "'+cmd", "'@SUM(A1)", "-5", "c-1"]);
    expect((await readBack(join(dir, "s.parquet"))).map((r) => r.customer_id)).toEqual(ids);
  });
});
