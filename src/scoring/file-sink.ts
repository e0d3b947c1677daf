import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import {
  BOOLEAN,
  DOUBLE,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  INTEGER,
  UINTEGER,
  UTINYINT,
  VARCHAR,
} from "@duckdb/node-api";
import duckdb from "@duckdb/node-bindings";
import { csvSafeSql, neutraliseFormula } from "../csv-safe.js";
import { quoteLiteral } from "../data/sql-quote.js";
import { ChurnopsError } from "../errors.js";
import type { ScoreColumns, ScoreRow } from "../store/runs.js";

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const VECTOR_ROWS = 2048;
/** The scratch table's columns: customer_id, probability, band code, decision, part. */
const SCORE_TYPES = [VARCHAR, DOUBLE, UTINYINT, BOOLEAN, INTEGER];

/** Fixed-width values into a (fresh, all-valid) DuckDB vector, as bytes. */
function copyInto(vector: duckdb.Vector, values: Float64Array | Uint8Array | Int32Array | Uint32Array): void {
  duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
}

export type FileFormat = "parquet" | "csv";

/**
 * A scored chunk as the sink takes it: fixed-width columns as typed arrays of their own (so they can cross to the
 * sink's thread as bytes) and bands as codes into `bandLabels`, never one string per row.
 */
export interface CodedScores {
  runId: string;
  modelName: string;
  modelVersion: string;
  scoredAt: string;
  customerIds: string[];
  probabilities: Float64Array;
  bandLabels: string[];
  bandCodes: Uint8Array;
  /** 1 = at or above the operating threshold. */
  decisions: Uint8Array;
  reasons?: CodedReasons | undefined;
}

/**
 * `--reasons N` for a chunk, as numbers: per row N feature codes (index into `features` + 1, 0 = no reason at
 * that rank) and N sentence codes (+ 1, 0 = none), row-major. Sentences are numbered by the scorer's
 * ReasonWriter across the whole run; each chunk carries the ones first used in it (codes from `textBase`).
 */
export interface CodedReasons {
  n: number;
  features: string[];
  featureCodes: Uint8Array;
  textCodes: Uint32Array;
  textBase: number;
  newTexts: string[];
}

export function codeScores(scores: ScoreColumns): CodedScores {
  const n = scores.customerIds.length;
  const codes = new Map<string, number>();
  const bandLabels: string[] = [];
  const bandCodes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const band = scores.bands[i] as string;
    let code = codes.get(band);
    if (code === undefined) {
      code = bandLabels.push(band) - 1;
      if (code > 255) throw new Error("more than 256 distinct risk bands");
      codes.set(band, code);
    }
    bandCodes[i] = code;
  }
  return {
    runId: scores.runId,
    modelName: scores.modelName,
    modelVersion: scores.modelVersion,
    scoredAt: scores.scoredAt,
    customerIds: scores.customerIds,
    // Copies of their own, made by memcpy when the chunk already holds typed arrays (as scoring's do).
    probabilities: scores.probabilities instanceof Float64Array ? scores.probabilities.slice() : Float64Array.from(scores.probabilities),
    bandLabels,
    bandCodes,
    decisions: scores.decisions instanceof Uint8Array ? scores.decisions.slice() : Uint8Array.from(scores.decisions, (d) => (d === 1 ? 1 : 0)),
    reasons: scores.reasonCodes,
  };
}

/** A stored score's reasons (JSON, migration 016) as the file's N feature names and texts. */
function storedReasons(json: string | null | undefined, n: number): { features: string[]; texts: string[] } {
  const features = new Array<string>(n).fill("");
  const texts = new Array<string>(n).fill("");
  if (json === null || json === undefined) return { features, texts };
  const list = JSON.parse(json) as { feature?: unknown; text?: unknown }[];
  for (let k = 0; k < Math.min(n, list.length); k++) {
    features[k] = String(list[k]?.feature ?? "");
    texts[k] = String(list[k]?.text ?? "");
  }
  return { features, texts };
}

export function fileFormatOf(path: string): FileFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".parquet" || ext === ".pq") return "parquet";
  if (ext === ".csv") return "csv";
  throw new ChurnopsError("bad_input", `--out ${path}: expected a file ending in .parquet or .csv`, { field: "out" });
}

/**
 * An output path a run can write at its end: a known format, in a directory that exists. Checked before any
 * row is scored, so a typo in --out does not cost a whole table's scoring.
 */
export function checkOutput(path: string): FileFormat {
  const format = fileFormatOf(path);
  const dir = dirname(resolve(path));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // Missing: refused below, like a file in the way.
  }
  if (!isDir) throw new ChurnopsError("bad_input", `--out ${path}: the directory ${dir} does not exist (create it first)`, { field: "out" });
  return format;
}

/**
 * Writes scores to a Parquet or CSV file. Rows go through DuckDB's appender into an on-disk scratch
 * database (so memory stays bounded at any row count) and are copied to the target file on close.
 */
export class ScoreFileSink {
  private rows = 0;
  /** Rows appended one value at a time sit in the appender's own buffer until flushed. */
  private rowsBuffered = false;
  private appenderOpen = true;
  private readonly parts: [string, string, string, string][] = [];
  /** Band labels by code: a band is stored as a one-byte code and spelled out when the file is written. */
  private readonly bands = new Map<string, number>();
  /** Reason features and sentences by code (1-based; 0 = no reason), spelled out when the file is written. */
  private readonly reasonFeatures = new Map<string, number>();
  private readonly reasonTexts = new Map<string, number>();
  /** The scorer's sentence codes → this sink's (the same once deduplicated; a translation keeps them apart). */
  private readonly textFromScorer: number[] = [];
  /** Whether textFromScorer is still the identity (code i + 1 for the scorer's code i). */
  private sameTextCodes = true;

  private constructor(
    readonly path: string,
    private readonly format: FileFormat,
    private readonly scratch: string,
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly appender: DuckDBAppender,
    /** `--reasons N`: the file's reason_1..N and reason_1..N_text columns. */
    private readonly reasons: number,
  ) {}

  static async open(path: string, reasons = 0): Promise<ScoreFileSink> {
    const format = fileFormatOf(path);
    const scratch = mkdtempSync(join(tmpdir(), "churnops-out-"));
    const instance = await DuckDBInstance.create(join(scratch, "scratch.duckdb"), { threads: "2", memory_limit: "512MB" });
    const conn = await instance.connect();
    // The scratch table lives only until close: compressing it cost 3 s of appending per 10M rows.
    await conn.run("SET force_compression = 'uncompressed'");
    // Only the per-row columns go through the appender; run id, model and time are the same for a whole
    // chunk and are kept beside it, which halves the appender work per row.
    const reasonColumns = Array.from({ length: reasons }, (_, k) => `, r${k + 1} UTINYINT, t${k + 1} UINTEGER`).join("");
    await conn.run(`CREATE TABLE scores (customer_id VARCHAR, probability DOUBLE, band UTINYINT, decision BOOLEAN, part INTEGER${reasonColumns})`);
    await conn.run("CREATE TABLE parts (part INTEGER, run_id VARCHAR, model_name VARCHAR, model_version VARCHAR, scored_at VARCHAR)");
    const appender = await conn.createAppender("scores");
    return new ScoreFileSink(resolve(path), format, scratch, instance, conn, appender, reasons);
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
      if (this.reasons > 0) {
        const { features, texts } = storedReasons(r.reasons, this.reasons);
        for (let k = 0; k < this.reasons; k++) {
          a.appendUTinyInt(features[k] === "" ? 0 : this.codeOf(this.reasonFeatures, features[k] as string, 255));
          a.appendUInteger(texts[k] === "" ? 0 : this.codeOf(this.reasonTexts, texts[k] as string, 2 ** 32 - 2));
        }
      }
      a.endRow();
    }
    this.rows += rows.length;
    this.rowsBuffered ||= rows.length > 0;
  }

  /**
   * A scored chunk as whole DuckDB data chunks: one append per 2,048 rows, and the fixed-width columns copied
   * into the vectors' memory as bytes, so no JS value is made per cell (only the ids are passed one by one).
   */
  appendCoded(scores: CodedScores): void {
    // Whole data chunks bypass the appender's row buffer: rows still in it must land first to keep the order.
    if (this.rowsBuffered) this.appender.flushSync();
    this.rowsBuffered = false;
    this.parts.push([scores.runId, scores.modelName, scores.modelVersion, scores.scoredAt]);
    const part = this.parts.length - 1;
    const n = scores.customerIds.length;
    // The chunk's codes index its own labels; the file's codes are this sink's.
    const toSink = scores.bandLabels.map((label) => this.bandCode(label));
    const bands = scores.bandCodes.map((code) => toSink[code] as number);
    const parts = new Int32Array(Math.min(n, VECTOR_ROWS)).fill(part);
    const m = this.reasons;
    const types = m === 0 ? SCORE_TYPES : [...SCORE_TYPES, ...Array.from({ length: m }, () => [UTINYINT, UINTEGER]).flat()];
    const coded = scores.reasons;
    if (m > 0 && (coded === undefined || coded.n !== m || coded.featureCodes.length !== n * m)) throw new Error(`a chunk without its ${m} reasons per row`);
    const { featureCodes, textCodes } = m > 0 ? this.translate(coded as CodedReasons) : { featureCodes: new Uint8Array(0), textCodes: new Uint32Array(0) };
    const column8 = new Uint8Array(VECTOR_ROWS);
    const column32 = new Uint32Array(VECTOR_ROWS);
    for (let from = 0; from < n; from += VECTOR_ROWS) {
      const rows = Math.min(n, from + VECTOR_ROWS) - from;
      const chunk = DuckDBDataChunk.create(types, rows);
      const vector = (column: number) => duckdb.data_chunk_get_vector(chunk.chunk, column);
      const ids = vector(0);
      for (let i = 0; i < rows; i++) duckdb.vector_assign_string_element(ids, i, scores.customerIds[from + i] as string);
      copyInto(vector(1), scores.probabilities.subarray(from, from + rows));
      copyInto(vector(2), bands.subarray(from, from + rows));
      copyInto(vector(3), scores.decisions.subarray(from, from + rows));
      copyInto(vector(4), parts.subarray(0, rows));
      for (let k = 0; k < m; k++) {
        for (let i = 0; i < rows; i++) {
          column8[i] = featureCodes[(from + i) * m + k] as number;
          column32[i] = textCodes[(from + i) * m + k] as number;
        }
        copyInto(vector(5 + 2 * k), column8.subarray(0, rows));
        copyInto(vector(6 + 2 * k), column32.subarray(0, rows));
      }
      this.appender.appendDataChunk(chunk);
    }
    this.rows += n;
  }

  /** A chunk's reason codes in this sink's numbering (new sentences join the sink's dictionary first). */
  private translate(coded: CodedReasons): { featureCodes: Uint8Array; textCodes: Uint32Array } {
    coded.newTexts.forEach((text, i) => {
      const code = this.codeOf(this.reasonTexts, text, 2 ** 32 - 2);
      this.textFromScorer[coded.textBase + i] = code;
      this.sameTextCodes &&= code === coded.textBase + i + 1;
    });
    const features = coded.features.map((name) => this.codeOf(this.reasonFeatures, name, 255));
    // One run into one file (the usual case) numbers both dictionaries as the scorer does: nothing to translate
    // (mapping 30M codes cost 1.5 s of the file thread per 10M rows × 3 reasons).
    const same = this.sameTextCodes && features.every((code, i) => code === i + 1);
    if (same) return { featureCodes: coded.featureCodes, textCodes: coded.textCodes };
    const featureCodes = coded.featureCodes.map((c) => (c === 0 ? 0 : (features[c - 1] as number)));
    const textCodes = coded.textCodes.map((c) => (c === 0 ? 0 : (this.textFromScorer[c - 1] as number)));
    return { featureCodes, textCodes };
  }

  /** 1-based code of a label in a dictionary (0 stays "none"). */
  private codeOf(dictionary: Map<string, number>, label: string, max: number): number {
    let code = dictionary.get(label);
    if (code === undefined) {
      code = dictionary.size + 1;
      if (code > max) throw new Error(`more than ${max} distinct reason labels`);
      dictionary.set(label, code);
    }
    return code;
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
      this.appenderOpen = false;
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
      const target = quoteLiteral(this.path);
      const options = this.format === "parquet" ? "FORMAT parquet, COMPRESSION zstd" : "FORMAT csv, HEADER true";
      // Labels are spelled out per row by expression, not by joins: a plain projection of the scratch table
      // keeps insertion order (DuckDB's preserve_insertion_order), so no sort is needed (the joins and ORDER BY
      // rowid cost 4.8 s of the sink's 14 s at 10M rows). A column with one value over the whole file (run,
      // model: always, for a fresh run) is a literal; one that varies by part is a list indexed by part, held
      // in a variable (a plain scalar); a band is a CASE over its code.
      // In a CSV, text a spreadsheet would run as a formula is neutralised (src/csv-safe.ts): the customer id
      // per row in SQL, the labels and literals here.
      const csv = this.format === "csv";
      const text = (v: string): string => quoteLiteral(csv ? neutraliseFormula(v) : v);
      const partColumns = ["run_id", "model_name", "model_version", "scored_at"] as const;
      const expressions: string[] = [];
      for (const [k, column] of partColumns.entries()) {
        const values = new Set(this.parts.map((p) => p[k]));
        if (values.size === 1) expressions.push(`${text([...values][0] as string)} AS ${column}`);
        else {
          const value = csv ? csvSafeSql(column) : column;
          await this.conn.run(`SET VARIABLE ${column}s = (SELECT list(${value} ORDER BY part) FROM parts)`);
          expressions.push(`getvariable('${column}s')[s.part + 1] AS ${column}`);
        }
      }
      // No band at all when no row was scored (every row quarantined, an empty table): a CASE needs a WHEN.
      const band =
        this.bands.size === 0
          ? "CAST(NULL AS VARCHAR) AS band"
          : `CASE s.band ${[...this.bands].map(([label, code]) => `WHEN ${code} THEN ${text(label)}`).join(" ")} END AS band`;
      const [runId, modelName, modelVersion, scoredAt] = expressions;
      const customerId = csv ? `${csvSafeSql("s.customer_id")} AS customer_id` : "s.customer_id";
      // Reasons: code 0 is "no reason at this rank" (fewer risk-raising features), null in the file. Features are
      // a CASE over their few codes. Sentences are many (34k distinct per 1M rows seen): a list indexed by code,
      // joined once as a one-row table so every chunk reads the same list. (Held in a variable, the list was copied
      // for every 2,048-row chunk: 33 s for 2M rows with 50k sentences, against 3 s.) For Parquet the list holds an
      // ENUM of the sentences, which DuckDB writes as the column's dictionary instead of hashing every string
      // again (0.4 s for those 2M rows); readers see a plain string column.
      let from = "FROM scores s";
      if (this.reasons > 0 && this.reasonTexts.size > 0) {
        await this.conn.run("CREATE TABLE reason_texts (code UINTEGER, text VARCHAR)");
        const texts = await this.conn.createAppender("reason_texts");
        for (const [label, code] of this.reasonTexts) {
          texts.appendUInteger(code);
          texts.appendVarchar(label);
          texts.endRow();
        }
        texts.flushSync();
        texts.closeSync();
        let value = "text";
        if (csv) value = csvSafeSql("text");
        else {
          await this.conn.run("CREATE TYPE reason_text AS ENUM (SELECT text FROM reason_texts ORDER BY code)");
          value = "text::reason_text";
        }
        from = `FROM scores s, (SELECT list(${value} ORDER BY code) AS texts FROM reason_texts) d`;
      }
      const feature = (k: number): string =>
        this.reasonFeatures.size === 0
          ? "CAST(NULL AS VARCHAR)"
          : `CASE s.r${k} ${[...this.reasonFeatures].map(([label, code]) => `WHEN ${code} THEN ${text(label)}`).join(" ")} END`;
      const sentence = (k: number): string =>
        this.reasonTexts.size === 0 ? "CAST(NULL AS VARCHAR)" : `CASE WHEN s.t${k} = 0 THEN NULL ELSE d.texts[s.t${k}] END`;
      const reasonOut = Array.from(
        { length: this.reasons },
        (_, i) => `, ${feature(i + 1)} AS reason_${i + 1}, ${sentence(i + 1)} AS reason_${i + 1}_text`,
      ).join("");
      const select = `SELECT ${runId}, ${customerId}, s.probability, ${band}, s.decision, ${modelName}, ${modelVersion}, ${scoredAt}${reasonOut} ${from}`;
      await this.conn.run(`COPY (${select}) TO ${target} (${options})`);
    } finally {
      this.discard();
    }
  }

  /** Remove the scratch database without writing the file (a failed run leaves no partial output). */
  discard(): void {
    if (this.appenderOpen) {
      this.appenderOpen = false;
      try {
        this.appender.closeSync();
      } catch {
        // Its rows are being thrown away; a failure to flush them changes nothing.
      }
    }
    this.conn.closeSync();
    this.instance.closeSync();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
