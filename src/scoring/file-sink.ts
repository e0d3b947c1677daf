import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { BOOLEAN, DOUBLE, type DuckDBAppender, type DuckDBConnection, DuckDBDataChunk, DuckDBInstance, INTEGER, UTINYINT, VARCHAR } from "@duckdb/node-api";
import { ChurnopsError } from "../errors.js";
import type { ScoreColumns, ScoreRow } from "../store/runs.js";

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const VECTOR_ROWS = 2048;

export type FileFormat = "parquet" | "csv";

export function fileFormatOf(path: string): FileFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".parquet" || ext === ".pq") return "parquet";
  if (ext === ".csv") return "csv";
  throw new ChurnopsError("bad_input", `--out ${path}: expected a file ending in .parquet or .csv`, { field: "out" });
}

/**
 * Writes scores to a Parquet or CSV file. Rows go through DuckDB's appender into an on-disk scratch
 * database (so memory stays bounded at any row count) and are copied to the target file on close.
 */
export class ScoreFileSink {
  private rows = 0;
  private readonly parts: [string, string, string, string][] = [];
  /** Band labels by code: a band is stored as a one-byte code and spelled out when the file is written. */
  private readonly bands = new Map<string, number>();

  private constructor(
    readonly path: string,
    private readonly format: FileFormat,
    private readonly scratch: string,
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly appender: DuckDBAppender,
  ) {}

  static async open(path: string): Promise<ScoreFileSink> {
    const format = fileFormatOf(path);
    const scratch = mkdtempSync(join(tmpdir(), "churnops-out-"));
    const instance = await DuckDBInstance.create(join(scratch, "scratch.duckdb"), { threads: "2", memory_limit: "512MB" });
    const conn = await instance.connect();
    // Only the per-row columns go through the appender; run id, model and time are the same for a whole
    // chunk and are kept beside it, which halves the appender work per row.
    await conn.run("CREATE TABLE scores (customer_id VARCHAR, probability DOUBLE, band UTINYINT, decision BOOLEAN, part INTEGER)");
    await conn.run("CREATE TABLE parts (part INTEGER, run_id VARCHAR, model_name VARCHAR, model_version VARCHAR, scored_at VARCHAR)");
    const appender = await conn.createAppender("scores");
    return new ScoreFileSink(resolve(path), format, scratch, instance, conn, appender);
  }

  /** Rows read back from a store (exports): each row may name its own run, model and time. */
  appendRows(rows: readonly ScoreRow[]): void {
    const a = this.appender;
    let key = "";
    for (const r of rows) {
      const k = `${r.run_id}\u0000${r.model_name}\u0000${r.model_version}\u0000${r.scored_at}`;
      if (k !== key) {
        key = k;
        this.parts.push([r.run_id, r.model_name, r.model_version, r.scored_at]);
      }
      a.appendVarchar(r.customer_id);
      a.appendDouble(r.probability);
      a.appendUTinyInt(this.bandCode(r.band));
      a.appendBoolean(r.decision === 1);
      a.appendInteger(this.parts.length - 1);
      a.endRow();
    }
    this.rows += rows.length;
  }

  /**
   * A scored chunk, column by column, as whole DuckDB data chunks: one call per 2,048 rows instead of one per
   * value, which was most of the cost of writing a file.
   */
  appendColumns(scores: ScoreColumns): void {
    this.parts.push([scores.runId, scores.modelName, scores.modelVersion, scores.scoredAt]);
    const part = this.parts.length - 1;
    const n = scores.customerIds.length;
    for (let from = 0; from < n; from += VECTOR_ROWS) {
      const to = Math.min(n, from + VECTOR_ROWS);
      const chunk = DuckDBDataChunk.create([VARCHAR, DOUBLE, UTINYINT, BOOLEAN, INTEGER], to - from);
      const probabilities: number[] = [];
      const bands: number[] = [];
      const decisions: boolean[] = [];
      for (let i = from; i < to; i++) {
        probabilities.push(scores.probabilities[i] as number);
        bands.push(this.bandCode(scores.bands[i] as string));
        decisions.push(scores.decisions[i] === 1);
      }
      chunk.setColumns([scores.customerIds.slice(from, to), probabilities, bands, decisions, new Array<number>(to - from).fill(part)]);
      this.appender.appendDataChunk(chunk);
    }
    this.rows += n;
  }

  private bandCode(band: string): number {
    let code = this.bands.get(band);
    if (code === undefined) {
      code = this.bands.size;
      if (code > 255) throw new Error("more than 256 distinct risk bands");
      this.bands.set(band, code);
    }
    return code;
  }

  get count(): number {
    return this.rows;
  }

  /** Copy everything appended to the target file, then remove the scratch database. */
  async close(): Promise<void> {
    try {
      this.appender.flushSync();
      this.appender.closeSync();
      const parts = await this.conn.createAppender("parts");
      this.parts.forEach(([runId, name, version, at], i) => {
        parts.appendInteger(i);
        parts.appendVarchar(runId);
        parts.appendVarchar(name);
        parts.appendVarchar(version);
        parts.appendVarchar(at);
        parts.endRow();
      });
      parts.flushSync();
      parts.closeSync();
      await this.conn.run("CREATE TABLE bands (code UTINYINT, label VARCHAR)");
      const bands = await this.conn.createAppender("bands");
      for (const [label, code] of this.bands) {
        bands.appendUTinyInt(code);
        bands.appendVarchar(label);
        bands.endRow();
      }
      bands.flushSync();
      bands.closeSync();
      const target = `'${this.path.replaceAll("'", "''")}'`;
      const options = this.format === "parquet" ? "FORMAT parquet, COMPRESSION zstd" : "FORMAT csv, HEADER true";
      const select =
        "SELECT p.run_id, s.customer_id, s.probability, b.label AS band, s.decision, p.model_name, p.model_version, p.scored_at FROM scores s JOIN parts p USING (part) JOIN bands b ON b.code = s.band ORDER BY s.rowid";
      await this.conn.run(`COPY (${select}) TO ${target} (${options})`);
    } finally {
      this.conn.closeSync();
      this.instance.closeSync();
      rmSync(this.scratch, { recursive: true, force: true });
    }
  }
}
