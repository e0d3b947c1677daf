import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type DuckDBConnection, type DuckDBDataChunk, DuckDBInstance } from "@duckdb/node-api";
import SqliteDatabase from "better-sqlite3";
import type pg from "pg";
import { ChurnopsError } from "../errors.js";
import { redactUrl } from "../redact.js";
import type { ColumnHints, ColumnValues } from "./columns.js";
import { intColumn, NumberColumnBuilder } from "./duck-columns.js";
import { canonicalId } from "./ids.js";
import { quoteIdent, quoteLiteral } from "./sql-quote.js";

/** Where customers come from: a CSV/Parquet file, or a table/query in SQLite or PostgreSQL. */
export interface SourceSpec {
  data: string;
  table?: string | undefined;
  query?: string | undefined;
}

/** A run of consecutive input rows, column-oriented. `start` is the 0-based number of its first row. */
export interface RawChunk<C extends ColumnValues = unknown[]> {
  start: number;
  size: number;
  columns: Map<string, C>;
}

export interface ChunkOptions {
  columns: readonly string[];
  chunkSize: number;
  /** Rows to skip from the start (a resumed run's checkpoint). */
  skipRows: number;
}

export interface CustomerSource {
  /** For messages and the run record; never contains a password. */
  readonly description: string;
  /** Whether values arrive as text (CSV) and numbers must be parsed. */
  readonly textNumbers: boolean;
  readonly columns: readonly string[];
  chunks(options: ChunkOptions): AsyncGenerator<RawChunk>;
  /**
   * The same rows, read with the model's view of the columns: a reader that can use it delivers numeric
   * features as NumberColumns and categorical features as codes into the model's categories (batch scoring's fast path).
   */
  modelChunks(options: ChunkOptions, hints: ColumnHints): AsyncGenerator<RawChunk<ColumnValues>>;
  /** Values of `column` that occur more than once, in their canonical text form (src/data/ids.ts). */
  duplicates(column: string): Promise<Set<string>>;
  /**
   * How many rows the input has, when the reader can tell without reading them (a Parquet file's footer, a CSV
   * file small enough that counting is instant); null when only reading everything would tell.
   */
  knownRows(): Promise<number | null>;
  close(): Promise<void>;
}

/** A CSV file up to this size is counted outright by knownRows (a few milliseconds); a larger one is not. */
const COUNTED_CSV_BYTES = 1024 * 1024;

export async function openSource(spec: SourceSpec): Promise<CustomerSource> {
  const { data } = spec;
  if (data.startsWith("postgres://") || data.startsWith("postgresql://")) return PostgresSource.open(spec);
  if (data.startsWith("sqlite:")) return SqliteSource.open(spec);
  return DuckFileSource.open(spec);
}

function relationOf(spec: SourceSpec, quote: (s: string) => string): string {
  if (spec.query !== undefined && spec.table !== undefined) throw new ChurnopsError("bad_input", "give --table or --query, not both", { field: "table" });
  if (spec.query !== undefined) return `(${spec.query}) AS q`;
  if (spec.table !== undefined) return spec.table.split(".").map(quote).join(".");
  throw new ChurnopsError("bad_input", `${redactUrl(spec.data)} is a database: say which rows with --table NAME or --query SQL`, { field: "table" });
}

function requireColumns(available: readonly string[], wanted: readonly string[], description: string): void {
  const missing = wanted.filter((c) => !available.includes(c));
  if (missing.length > 0) {
    throw new ChurnopsError(
      "bad_input",
      `${description} has no column ${missing.map((m) => JSON.stringify(m)).join(", ")} (the model needs it); columns present: ${available.join(", ")}`,
      { field: missing[0] },
    );
  }
}

/** DuckDB values beyond the JSON-like ones (decimals, dates) become numbers or text. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  const maybe = v as { toDouble?: () => number };
  return typeof maybe.toDouble === "function" ? maybe.toDouble() : String(v);
}

/**
 * How a CSV file is parsed: as DuckDB's sniffer detects it, or, when the sniffer cannot settle on a dialect, the
 * standard one (RFC 4180; tabs for .tsv) with the header's columns, which reads a ragged file far enough to name
 * its first ragged line.
 */
type CsvDialect = { kind: "sniffed" } | { kind: "standard"; columns: readonly string[] };

function standardOptions(path: string): string {
  const delimiter = /\.tsv(\.gz)?$/i.test(path) ? "\t" : ",";
  return `delim = ${quoteLiteral(delimiter)}, quote = '"', escape = '"', strict_mode = true, null_padding = false`;
}

function csvRelation(path: string, dialect: CsvDialect, header: boolean): string {
  const base = `read_csv(${quoteLiteral(path)}, header = ${header}, all_varchar = true`;
  // Strict either way: a line with a field too many is an error, never silently cut to the header's width.
  if (dialect.kind === "sniffed") return `${base}, strict_mode = true, null_padding = false)`;
  const columns = `{${dialect.columns.map((c) => `${quoteLiteral(c)}: 'VARCHAR'`).join(", ")}}`;
  return `${base}, ${standardOptions(path)}, auto_detect = false, columns = ${columns})`;
}

/** The header's columns in the standard dialect, read from a copy of the header line alone (nothing to disagree with). */
async function standardDialect(conn: DuckDBConnection, path: string): Promise<CsvDialect> {
  const dir = mkdtempSync(join(tmpdir(), "churnops-csv-header-"));
  try {
    const copy = join(dir, "header.csv");
    writeFileSync(copy, `${headerLine(path)}\n`);
    const rows = (
      await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_csv(${quoteLiteral(copy)}, header = true, all_varchar = true, ${standardOptions(path)})`)
    ).getRows();
    return { kind: "standard", columns: rows.map((r) => String(r[0])) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The file's first line (up to 64 KiB; empty for a compressed file, whose bytes say nothing). */
function headerLine(path: string): string {
  if (/\.gz$/i.test(path)) return "";
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(65_536);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, read).toString("utf8").split(/\r?\n/)[0] ?? "";
  } finally {
    closeSync(fd);
  }
}

/**
 * DuckDB's error for a line with more or fewer fields than the header, as the line it is and what it holds, or
 * null for any other error. Such a file is refused whole: which of its fields belong to which column is a guess.
 */
export function csvError(err: unknown, path: string): ChurnopsError | null {
  const message = err instanceof Error ? err.message : String(err);
  const m = /CSV Error on Line: (\d+)[\s\S]*?Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  if (m === null) return null;
  const [, line, expected, found] = m;
  return new ChurnopsError(
    "bad_input",
    `${path} line ${line} has ${found} fields where the header has ${expected}: every line needs one field per column ` +
      "(quote a value that contains the delimiter, and check the line for a missing or extra separator)",
    { field: "data" },
  );
}

/**
 * The file's own column names, by position. DuckDB's identifiers are case-insensitive, so beside `Plan` it
 * calls a second column `plan` `plan_1`; a model trained on the file knows it as `plan`. When the file's
 * header cannot be matched column for column, DuckDB's names stand.
 */
async function fileColumnNames(conn: DuckDBConnection, path: string, csv: CsvDialect | null, duckNames: string[]): Promise<string[]> {
  const sql =
    csv !== null
      ? `SELECT * FROM ${csvRelation(path, csv, false)} LIMIT 1`
      : `SELECT name FROM parquet_schema(${quoteLiteral(path)}) WHERE num_children IS NULL`;
  try {
    const reader = await conn.runAndReadAll(sql);
    const cells = csv !== null ? (reader.getRowsJS()[0] ?? []) : reader.getRowsJS().map((r) => r[0]);
    const names = cells.map((c) => (typeof c === "string" ? c : ""));
    const usable = names.length === duckNames.length && new Set(names).size === names.length && !names.includes("");
    return usable ? names : duckNames;
  } catch {
    return duckNames;
  }
}

function canonicalIds(values: readonly unknown[]): Set<string> {
  const ids = new Set<string>();
  for (const v of values) {
    const id = canonicalId(v);
    if (id !== null) ids.add(id);
  }
  return ids;
}

/** CSV and Parquet through DuckDB: streamed chunk by chunk, so memory does not grow with the file. */
class DuckFileSource implements CustomerSource {
  /** The file's rows, once a scan has counted them. */
  private rowCount: number | null = null;

  private constructor(
    readonly description: string,
    readonly textNumbers: boolean,
    readonly columns: readonly string[],
    private readonly columnTypes: ReadonlyMap<string, string>,
    /** The file's column name → DuckDB's name for it (they differ where DuckDB renamed a case twin). */
    private readonly sqlNames: ReadonlyMap<string, string>,
    private readonly relation: string,
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  static async open(spec: SourceSpec): Promise<DuckFileSource> {
    const path = resolve(spec.data);
    if (!existsSync(path)) throw new ChurnopsError("data_not_found", `no such file: ${path}`, { field: "data" });
    const lower = path.toLowerCase();
    let relation: string;
    let textNumbers: boolean;
    if (lower.endsWith(".parquet") || lower.endsWith(".pq")) {
      relation = `read_parquet(${quoteLiteral(path)})`;
      textNumbers = false;
    } else if (/\.(csv|tsv|txt)(\.gz)?$/.test(lower)) {
      // All text: our validation decides what a malformed number is, per row, instead of DuckDB failing the file.
      relation = csvRelation(path, { kind: "sniffed" }, true);
      textNumbers = true;
    } else {
      throw new ChurnopsError("bad_input", `${path}: expected a .csv or .parquet file, or a sqlite:/postgresql:// URL`, { field: "data" });
    }
    const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
    const conn = await instance.connect();
    let described: { column_name: unknown; column_type: unknown }[] = [];
    const describe = async (from: string) => (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`)).getRowObjects() as typeof described;
    let dialect: CsvDialect = { kind: "sniffed" };
    try {
      let sniffed = true;
      try {
        described = await describe(relation);
      } catch (err) {
        // DuckDB's sniffer gives up on a file whose lines disagree on their number of fields.
        if (!textNumbers || !/sniffing/i.test((err as Error).message)) throw err;
        sniffed = false;
      }
      // Or it settles for one column of whole lines, where the header shows the delimiter it should have found.
      if (textNumbers && sniffed && described.length === 1 && /[,\t]/.test(headerLine(path))) sniffed = false;
      if (!sniffed) {
        dialect = await standardDialect(conn, path);
        relation = csvRelation(path, dialect, true);
        described = await describe(relation);
      }
    } catch (err) {
      conn.closeSync();
      throw csvError(err, path) ?? new ChurnopsError("bad_input", `cannot read ${path}: ${(err as Error).message.split("\n")[0]}`, { field: "data" });
    }
    const duckNames = described.map((r) => String(r.column_name));
    const names = await fileColumnNames(conn, path, textNumbers ? dialect : null, duckNames);
    const types = new Map(described.map((r, i) => [names[i] as string, String(r.column_type)]));
    const sqlNames = new Map(names.map((n, i) => [n, duckNames[i] as string]));
    return new DuckFileSource(path, textNumbers, names, types, sqlNames, relation, instance, conn);
  }

  chunks(options: ChunkOptions): AsyncGenerator<RawChunk> {
    // Without hints every column is read as plain values.
    return this.read(options, undefined) as AsyncGenerator<RawChunk>;
  }

  modelChunks(options: ChunkOptions, hints: ColumnHints): AsyncGenerator<RawChunk<ColumnValues>> {
    return this.read(options, hints);
  }

  private async *read(options: ChunkOptions, hints: ColumnHints | undefined): AsyncGenerator<RawChunk<ColumnValues>> {
    requireColumns(this.columns, options.columns, this.description);
    const plans = options.columns.map((c) => this.planColumn(c, hints));
    const select = plans.flatMap((p) => p.select).join(", ");
    const result = await this.mapped(() => this.conn.stream(`SELECT ${select} FROM ${this.relation} OFFSET ${Math.max(0, Math.floor(options.skipRows))}`));
    let start = options.skipRows;
    let pending = plans.map((p) => p.collector(options.chunkSize));
    let pendingSize = 0;
    const emit = (): RawChunk<ColumnValues> => {
      const chunk: RawChunk<ColumnValues> = {
        start,
        size: pendingSize,
        columns: new Map(options.columns.map((c, i) => [c, (pending[i] as Collector).build()])),
      };
      start += pendingSize;
      pending = plans.map((p) => p.collector(options.chunkSize));
      pendingSize = 0;
      return chunk;
    };
    for (;;) {
      const dc = await this.mapped(() => result.fetchChunk());
      if (dc === null || dc.rowCount === 0) {
        await this.checkEnd(start + pendingSize);
        break;
      }
      let at = 0;
      for (let c = 0; c < plans.length; c++) {
        (pending[c] as Collector).append(dc, at, dc.rowCount);
        at += (plans[c] as ColumnPlan).select.length;
      }
      pendingSize += dc.rowCount;
      if (pendingSize >= options.chunkSize) yield emit();
    }
    if (pendingSize > 0) yield emit();
  }

  /**
   * How to read one column. A numeric feature stored as numbers is read as DOUBLE straight from DuckDB's
   * vectors; a categorical feature stored as text is matched against the model's categories inside DuckDB,
   * so only values outside them cross as text. Everything else arrives as plain values.
   */
  private planColumn(name: string, hints: ColumnHints | undefined): ColumnPlan {
    const q = quoteIdent(this.sqlNames.get(name) ?? name);
    const type = this.columnTypes.get(name) ?? "";
    if (hints?.numeric.has(name) === true && NUMERIC_TYPE.test(type)) {
      // Room for the DuckDB vector that tips a chunk over its size.
      return { select: [`CAST(${q} AS DOUBLE)`], collector: (size) => new NumberColumnBuilder(size + 2048) };
    }
    const categories = hints?.categories.get(name);
    if (categories !== undefined && type === "VARCHAR") {
      const position = `coalesce(list_position([${categories.map(quoteLiteral).join(", ")}]::VARCHAR[], ${q}), 0)`;
      return {
        select: [`CAST(${position} AS INTEGER)`, `CASE WHEN ${position} = 0 THEN ${q} END`],
        collector: (size) => new CategoryCollector(categories, size + 2048),
      };
    }
    return { select: [q], collector: () => new ValuesCollector() };
  }

  async duplicates(column: string): Promise<Set<string>> {
    requireColumns(this.columns, [column], this.description);
    const c = quoteIdent(this.sqlNames.get(column) ?? column);
    // Grouped by the typed value and spelled in JS, as scoring spells ids (DuckDB's CAST says 1.0 where JS says 1).
    // One scan for both: the duplicated ids, and (the row with no id) the file's row count for checkEnd.
    const reader = await this.mapped(() =>
      this.conn.runAndReadAll(
        `WITH g AS (SELECT ${c} AS k, count(*) AS n FROM ${this.relation} GROUP BY 1) ` +
          "SELECT true AS total, NULL AS k, sum(n) AS n FROM g UNION ALL SELECT false, k, n FROM g WHERE k IS NOT NULL AND n > 1",
      ),
    );
    const rows = reader.getRowObjects();
    const total = rows.find((r) => r.total === true);
    this.rowCount = total === undefined || total.n === null ? 0 : Number(plain(total.n));
    return canonicalIds(rows.filter((r) => r.total !== true).map((r) => plain(r.k)));
  }

  /**
   * A DuckDB stream that fails part way (a ragged line beyond the sniffer's sample, a damaged file) ends as if
   * the file had ended: the Node bindings do not expose the stream's error. So the end is checked against the
   * file's row count (from the duplicates scan when there was one; Parquet counts from its metadata), and
   * counting again raises the error the stream swallowed. Rows are never silently left unread.
   */
  private async checkEnd(rowsRead: number): Promise<void> {
    const rows = await this.countRows();
    if (rowsRead < rows)
      throw new ChurnopsError(
        "bad_input",
        `reading ${this.description} stopped after row ${rowsRead} of ${this.rowCount}; the file may be damaged or still being written`,
        {
          field: "data",
        },
      );
  }

  /** A ragged CSV line found while reading is the file's fault, said as such (not an internal error). */
  private async mapped<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      throw csvError(err, this.description) ?? err;
    }
  }

  async knownRows(): Promise<number | null> {
    // DuckDB answers a Parquet count from the row groups' metadata, without reading a column.
    if (this.textNumbers && statSync(this.description).size > COUNTED_CSV_BYTES) return this.rowCount;
    return this.countRows();
  }

  private async countRows(): Promise<number> {
    this.rowCount ??= await this.mapped(async () =>
      Number((await this.conn.runAndReadAll(`SELECT count(*) AS n FROM ${this.relation}`)).getRowObjects()[0]?.n ?? 0),
    );
    return this.rowCount;
  }

  async close(): Promise<void> {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$/;

interface ColumnPlan {
  /** Result columns this column is read through (one, or a category code and the raw text). */
  select: string[];
  collector: (capacity: number) => Collector;
}

/** Gathers one column across DuckDB data chunks until a scoring chunk is full. */
interface Collector {
  append(chunk: DuckDBDataChunk, at: number, rows: number): void;
  build(): ColumnValues;
}

class ValuesCollector implements Collector {
  private readonly values: unknown[] = [];

  append(chunk: DuckDBDataChunk, at: number, rows: number): void {
    const vector = chunk.getColumnVector(at);
    for (let i = 0; i < rows; i++) this.values.push(plain(vector.getItem(i)));
  }

  build(): ColumnValues {
    return this.values;
  }
}

/** A known category stays a code (see CodeColumn); only other values are read, as their raw value. */
class CategoryCollector implements Collector {
  private codes: Int32Array;
  private length = 0;
  private readonly raw = new Map<number, unknown>();

  constructor(
    private readonly categories: readonly string[],
    capacity: number,
  ) {
    this.codes = new Int32Array(Math.max(1, capacity));
  }

  append(chunk: DuckDBDataChunk, at: number, rows: number): void {
    const codes = intColumn(chunk, at, rows);
    if (this.length + rows > this.codes.length) {
      const grown = new Int32Array(Math.max(this.length + rows, this.codes.length * 2));
      grown.set(this.codes.subarray(0, this.length));
      this.codes = grown;
    }
    this.codes.set(codes, this.length);
    let raw: { getItem(i: number): unknown } | null = null;
    for (let i = 0; i < rows; i++) {
      if (codes[i] !== 0) continue;
      raw ??= chunk.getColumnVector(at + 1);
      this.raw.set(this.length + i, plain(raw.getItem(i)));
    }
    this.length += rows;
  }

  build(): ColumnValues {
    return { kind: "codes", codes: this.codes.subarray(0, this.length), categories: this.categories, raw: this.raw };
  }
}

/** A table or query in SQLite, iterated lazily by better-sqlite3. */
class SqliteSource implements CustomerSource {
  readonly textNumbers = false;

  private constructor(
    readonly description: string,
    readonly columns: readonly string[],
    private readonly relation: string,
    private readonly db: SqliteDatabase.Database,
  ) {}

  static async open(spec: SourceSpec): Promise<SqliteSource> {
    const path = spec.data.replace(/^sqlite:\/\//, "");
    if (!existsSync(path)) throw new ChurnopsError("data_not_found", `no such SQLite file: ${path}`, { field: "data" });
    const relation = relationOf(spec, quoteIdent);
    const db = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
    let columns: string[];
    try {
      columns = db
        .prepare(`SELECT * FROM ${relation} LIMIT 0`)
        .columns()
        .map((c) => c.name);
    } catch (err) {
      db.close();
      throw new ChurnopsError("bad_input", `${redactUrl(spec.data)}: ${(err as Error).message}`, { field: spec.query === undefined ? "table" : "query" });
    }
    return new SqliteSource(`${redactUrl(spec.data)} ${spec.table ?? "(query)"}`, columns, relation, db);
  }

  async *chunks(options: ChunkOptions): AsyncGenerator<RawChunk> {
    requireColumns(this.columns, options.columns, this.description);
    const stmt = this.db.prepare(`SELECT ${options.columns.map(quoteIdent).join(", ")} FROM ${this.relation} LIMIT -1 OFFSET ?`).raw(true);
    let start = options.skipRows;
    let pending: unknown[][] = options.columns.map(() => []);
    let size = 0;
    for (const row of stmt.iterate(Math.floor(options.skipRows)) as IterableIterator<unknown[]>) {
      for (let c = 0; c < row.length; c++) (pending[c] as unknown[]).push(row[c]);
      if (++size >= options.chunkSize) {
        yield { start, size, columns: new Map(options.columns.map((c, i) => [c, pending[i] ?? []])) };
        start += size;
        size = 0;
        pending = options.columns.map(() => []);
      }
    }
    if (size > 0) yield { start, size, columns: new Map(options.columns.map((c, i) => [c, pending[i] ?? []])) };
  }

  modelChunks(options: ChunkOptions): AsyncGenerator<RawChunk<ColumnValues>> {
    return this.chunks(options);
  }

  async duplicates(column: string): Promise<Set<string>> {
    requireColumns(this.columns, [column], this.description);
    const c = quoteIdent(column);
    const rows = this.db.prepare(`SELECT ${c} AS k FROM ${this.relation} WHERE ${c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1`).all() as { k: unknown }[];
    return canonicalIds(rows.map((r) => r.k));
  }

  async knownRows(): Promise<number | null> {
    // A table or query may be large; counting it would read it once more.
    return null;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** A table or query in PostgreSQL, read through a server-side cursor so the client never holds it all. */
class PostgresSource implements CustomerSource {
  readonly textNumbers = false;

  private constructor(
    readonly description: string,
    readonly columns: readonly string[],
    private readonly relation: string,
    private readonly client: pg.Client,
  ) {}

  static async open(spec: SourceSpec): Promise<PostgresSource> {
    const relation = relationOf(spec, quoteIdent);
    // NUMERIC arrives as text by default; scoring wants numbers.
    // Loaded here, not at start-up: only PostgreSQL sources need the driver.
    const { default: driver } = await import("pg");
    const client = new driver.Client({ connectionString: spec.data, types: { getTypeParser: numericParsers(driver.types) } });
    try {
      await client.connect();
    } catch (err) {
      throw new ChurnopsError("data_not_found", `cannot connect to ${redactUrl(spec.data)}: ${redactUrl((err as Error).message)}`, { field: "data" });
    }
    let columns: string[];
    try {
      const res = await readOnly(client, () => oneStatement(client, `SELECT * FROM ${relation} LIMIT 0`));
      columns = res.fields.map((f) => f.name);
    } catch (err) {
      await client.end();
      throw new ChurnopsError("bad_input", `${redactUrl(spec.data)}: ${(err as Error).message}`, { field: spec.query === undefined ? "table" : "query" });
    }
    return new PostgresSource(`${redactUrl(spec.data)} ${spec.table ?? "(query)"}`, columns, relation, client);
  }

  async *chunks(options: ChunkOptions): AsyncGenerator<RawChunk> {
    requireColumns(this.columns, options.columns, this.description);
    await this.client.query("BEGIN READ ONLY");
    try {
      await oneStatement(
        this.client,
        `DECLARE churnops_rows NO SCROLL CURSOR FOR SELECT ${options.columns.map(quoteIdent).join(", ")} FROM ${this.relation} OFFSET ${Math.floor(options.skipRows)}`,
      );
      let start = options.skipRows;
      for (;;) {
        const res = await oneStatement(this.client, `FETCH ${Math.floor(options.chunkSize)} FROM churnops_rows`, "array");
        const rows = res.rows as unknown[][];
        if (rows.length === 0) break;
        const columns = new Map(options.columns.map((c, i) => [c, rows.map((r) => r[i])]));
        yield { start, size: rows.length, columns };
        start += rows.length;
      }
    } finally {
      await this.client.query("ROLLBACK");
    }
  }

  modelChunks(options: ChunkOptions): AsyncGenerator<RawChunk<ColumnValues>> {
    return this.chunks(options);
  }

  async duplicates(column: string): Promise<Set<string>> {
    requireColumns(this.columns, [column], this.description);
    const c = quoteIdent(column);
    const res = await readOnly(this.client, () =>
      oneStatement(this.client, `SELECT ${c} AS k FROM ${this.relation} WHERE ${c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1`),
    );
    return canonicalIds(res.rows.map((r: { k: unknown }) => r.k));
  }

  async knownRows(): Promise<number | null> {
    return null;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/**
 * A statement that contains the source's SQL, sent with the extended protocol: PostgreSQL parses it as exactly
 * one statement, so a `--query` with a stacked `; DROP TABLE …` is refused instead of run. (`queryMode` is in
 * pg since 8.12; its type definitions do not list it yet.)
 */
function oneStatement(client: pg.Client, text: string, rowMode?: "array"): Promise<pg.QueryResult> {
  const config: pg.QueryConfig & { queryMode: "extended" } = { text, queryMode: "extended", ...(rowMode === undefined ? {} : { rowMode }) };
  return client.query(config);
}

/** Source reads run in a read-only transaction: even one statement cannot write (a function call, a locking clause). */
async function readOnly<T>(client: pg.Client, read: () => Promise<T>): Promise<T> {
  await client.query("BEGIN READ ONLY");
  try {
    return await read();
  } finally {
    await client.query("ROLLBACK");
  }
}

function numericParsers(types: typeof pg.types): (oid: number, format?: "text" | "binary") => (value: string) => unknown {
  // 1700 NUMERIC, 20 INT8: numbers, not strings.
  return (oid, format) => (oid === 1700 || oid === 20 ? (v: string) => Number(v) : (types.getTypeParser(oid, format ?? "text") as (value: string) => unknown));
}
