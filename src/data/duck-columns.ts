import type { DuckDBDataChunk } from "@duckdb/node-api";
import duckdb from "@duckdb/node-bindings";
import type { NumberColumn } from "./columns.js";

/**
 * Collects one DOUBLE column of a DuckDB result across data chunks straight from the vectors' memory: the
 * values are copied as bytes and NULLs read from the validity bitmap, so no JS value is made per cell.
 */
export class NumberColumnBuilder {
  private values: Float64Array;
  private missing: Uint8Array | null = null;
  private length = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(Math.max(1, capacity));
  }

  /** Append the first `rows` values of result column `column` of `chunk` (a DOUBLE column). */
  append(chunk: DuckDBDataChunk, column: number, rows: number): void {
    this.reserve(this.length + rows);
    const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
    const bytes = duckdb.vector_get_data(vector, rows * 8);
    // Copied bytewise: the vector's memory belongs to DuckDB and need not be 8-byte aligned for a view.
    new Uint8Array(this.values.buffer, this.length * 8, rows * 8).set(bytes.subarray(0, rows * 8));
    const validity = duckdb.vector_get_validity(vector, Math.ceil(rows / 64) * 8);
    if (validity) {
      for (let i = 0; i < rows; i++) {
        if ((((validity[i >> 3] as number) >> (i & 7)) & 1) === 0) {
          if (this.missing === null) this.missing = new Uint8Array(this.values.length);
          this.missing[this.length + i] = 1;
        }
      }
    }
    this.length += rows;
  }

  build(): NumberColumn {
    return { kind: "numbers", values: this.values.subarray(0, this.length), missing: this.missing?.subarray(0, this.length) ?? null };
  }

  private reserve(size: number): void {
    if (size <= this.values.length) return;
    const grown = new Float64Array(Math.max(size, this.values.length * 2));
    grown.set(this.values.subarray(0, this.length));
    this.values = grown;
    if (this.missing !== null) {
      const m = new Uint8Array(grown.length);
      m.set(this.missing.subarray(0, this.length));
      this.missing = m;
    }
  }
}

/** Reads an INTEGER column of a DuckDB data chunk (no NULLs expected) as an Int32Array copy. */
export function intColumn(chunk: DuckDBDataChunk, column: number, rows: number): Int32Array {
  const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
  const bytes = duckdb.vector_get_data(vector, rows * 4);
  const out = new Int32Array(rows);
  new Uint8Array(out.buffer).set(bytes.subarray(0, rows * 4));
  return out;
}
