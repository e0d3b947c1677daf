import type { ColumnValues } from "../data/columns.js";
import { idAt } from "../data/ids.js";
import type { CustomerSource } from "../data/source.js";

/**
 * A running hash of an input's customer ids in input order (two 32-bit multiplicative lanes, 64 bits). A run
 * stores it with every checkpoint; a resume reads the ids of the rows it would skip again and must arrive at
 * the same value, or the rows before the checkpoint are not the rows that were scored (another order, another
 * table) and skipping them would lose scores. Not cryptographic: it guards against accidents, not forgers.
 */
export class IdFingerprint {
  private constructor(
    private h1: number,
    private h2: number,
  ) {}

  static start(): IdFingerprint {
    return new IdFingerprint(0x811c9dc5, 0x9747b28c);
  }

  static resume(state: string): IdFingerprint {
    return new IdFingerprint(Number.parseInt(state.slice(0, 8), 16) | 0, Number.parseInt(state.slice(8, 16), 16) | 0);
  }

  /** Every row of a chunk's id column, in order; a missing id counts as a marker of its own. */
  addColumn(ids: ColumnValues, size: number): void {
    for (let i = 0; i < size; i++) this.add(idAt(ids, i));
  }

  add(id: string | null): void {
    let { h1, h2 } = this;
    if (id !== null)
      for (let k = 0; k < id.length; k++) {
        const c = id.charCodeAt(k);
        h1 = Math.imul(h1 ^ c, 0x9e3779b1);
        h2 = Math.imul(h2 ^ c, 0x85ebca77);
      }
    // A separator no id can contain as text, another for a missing id: ["ab", "c"] differs from ["a", "bc"].
    const end = id === null ? 0x1fffe : 0x1ffff;
    this.h1 = Math.imul(h1 ^ end, 0x9e3779b1) ^ (h2 >>> 15);
    this.h2 = Math.imul(h2 ^ end, 0x85ebca77) ^ (h1 >>> 13);
  }

  get state(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, "0") + (this.h2 >>> 0).toString(16).padStart(8, "0");
  }
}

/** The fingerprint of the first `rows` ids of a source, read again (the id column only). */
export async function fingerprintPrefix(source: CustomerSource, idColumn: string, rows: number, chunkSize: number): Promise<{ state: string; rows: number }> {
  const fp = IdFingerprint.start();
  let seen = 0;
  if (rows > 0)
    for await (const chunk of source.chunks({ columns: [idColumn], chunkSize: Math.min(chunkSize, rows), skipRows: 0 })) {
      const take = Math.min(chunk.size, rows - seen);
      fp.addColumn(chunk.columns.get(idColumn) as ColumnValues, take);
      seen += take;
      if (seen >= rows) break;
    }
  return { state: fp.state, rows: seen };
}
