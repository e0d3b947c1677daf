import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { PoolClient } from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { ChurnopsError } from "../errors.js";
import type { Store } from "./db.js";
import type { ChunkWrite } from "./runs.js";

/**
 * The PostgreSQL score write path (issue 21.1): one chunk, one transaction, as on SQLite. The claim is renewed
 * first (and names the run's key); the chunk's scores go into a temporary staging table with `COPY … FROM STDIN`
 * (text format: no parameter arrays for the server to parse), then into score_rows in one sorted INSERT … SELECT
 * (key order, whatever the input's order; ON CONFLICT DO NOTHING, so a re-sent chunk adds nothing); quarantine,
 * checkpoint and profile follow, and the commit makes all of it visible at once. The staging table is
 * per connection and empties itself at every commit.
 */
export async function writeChunkPostgres(store: Store, runId: string, chunk: ChunkWrite, claim: { owner: string; leaseMs: number }): Promise<void> {
  if (store.pg === null) throw new Error("writeChunkPostgres: not a PostgreSQL store");
  const client = await store.pg.connect();
  try {
    await client.query("BEGIN");
    const renewed = await client.query<{ run_key: number }>(
      "UPDATE score_runs SET lease_expires_at = $1 WHERE run_id = $2 AND lease_owner = $3 RETURNING run_key",
      [new Date(Date.now() + claim.leaseMs).toISOString(), runId, claim.owner],
    );
    const key = renewed.rows[0]?.run_key;
    if (renewed.rowCount !== 1 || key === undefined) throw new ChurnopsError("run_locked", `score run ${runId} was taken over by another process; stopping`);
    const c = chunk.scores;
    let inserted = 0;
    if (c.customerIds.length > 0) {
      const codes = await bandCodes(client, c.bands);
      if (!staged.has(client))
        await client.query(
          "CREATE TEMPORARY TABLE IF NOT EXISTS score_stage (customer_id text, probability double precision, band_code smallint, decision smallint, reasons text, features bytea) ON COMMIT DELETE ROWS",
        );
      await pipeline(copyLines(chunk, codes), client.query(copyFrom("COPY pg_temp.score_stage FROM STDIN")));
      const res = await client.query(
        `INSERT INTO score_rows (run_key, probability, band_code, decision, customer_id, reasons, features)
         SELECT $1, probability, band_code, decision, customer_id, reasons, features FROM pg_temp.score_stage ORDER BY customer_id
         ON CONFLICT (run_key, customer_id) DO NOTHING`,
        [key],
      );
      inserted = res.rowCount ?? 0;
    }
    let quarantined = 0;
    if (chunk.quarantine.length > 0) {
      const q = chunk.quarantine;
      const res = await client.query(
        `INSERT INTO quarantine (run_id, row_number, customer_id, reason)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) ON CONFLICT (run_id, row_number) DO NOTHING`,
        [q.map((r) => r.run_id), q.map((r) => r.row_number), q.map((r) => r.customer_id), q.map((r) => r.reason)],
      );
      quarantined = res.rowCount ?? 0;
    }
    // The counts are of rows the store took, never of rows offered: rows_scored is always the run's stored scores.
    await client.query(
      `UPDATE score_runs SET checkpoint_rows = $1, rows_read = $1, rows_scored = rows_scored + $2, rows_quarantined = rows_quarantined + $3,
       input_fingerprint = coalesce($4, input_fingerprint) WHERE run_id = $5`,
      [chunk.checkpointRows, inserted, quarantined, chunk.fingerprint ?? null, runId],
    );
    if (chunk.profile !== undefined && chunk.profile !== null)
      await client.query("INSERT INTO run_profiles (run_id, profile) VALUES ($1, $2) ON CONFLICT (run_id) DO UPDATE SET profile = excluded.profile", [
        runId,
        chunk.profile,
      ]);
    await client.query("COMMIT");
    // Only a committed CREATE leaves the table (one rolled back with its chunk is made again next time).
    staged.add(client);
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Connections that already have their staging table (temporary tables live as long as the connection). */
const staged = new WeakSet<PoolClient>();

/** The code of each band label in the chunk, adding labels the store has not seen (inside the transaction). */
async function bandCodes(client: PoolClient, bands: readonly string[]): Promise<Map<string, number>> {
  const distinct = [...new Set(bands)];
  // Only labels not there yet: an INSERT that conflicts would still use up a value of the identity (a smallint).
  await client.query(
    "INSERT INTO score_bands (band) SELECT b FROM unnest($1::text[]) AS b WHERE NOT EXISTS (SELECT 1 FROM score_bands s WHERE s.band = b) ORDER BY 1 ON CONFLICT (band) DO NOTHING",
    [distinct],
  );
  const rows = await client.query<{ band: string; band_code: number }>("SELECT band, band_code FROM score_bands WHERE band = ANY($1::text[])", [distinct]);
  return new Map(rows.rows.map((r) => [r.band, Number(r.band_code)]));
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const SPECIAL = /[\\\t\n\r]/;

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyText(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (ch) => (ch === "\\" ? "\\\\" : ch === "\t" ? "\\t" : ch === "\n" ? "\\n" : "\\r"));
}

/** Rows per piece handed to the COPY stream. */
const COPY_PIECE_ROWS = 4096;

/** The chunk's scores as COPY text lines (customer_id, probability, band_code, decision, reasons, features). */
function copyLines(chunk: ChunkWrite, codes: ReadonlyMap<string, number>): Readable {
  const c = chunk.scores;
  const n = c.customerIds.length;
  const f = c.features;
  function* pieces(): Generator<string> {
    let lastBand = "";
    let lastCode = "";
    for (let start = 0; start < n; start += COPY_PIECE_ROWS) {
      let text = "";
      const end = Math.min(n, start + COPY_PIECE_ROWS);
      for (let j = start; j < end; j++) {
        const band = c.bands[j] as string;
        if (band !== lastBand || lastCode === "") {
          lastBand = band;
          lastCode = String(codes.get(band));
        }
        const reasons = c.reasons?.[j];
        let features = "\\N";
        if (f !== undefined) {
          features = "\\\\x";
          for (let k = j * f.width, e = k + f.width; k < e; k++) features += HEX[f.codes[k] as number];
        }
        text += `${copyText(c.customerIds[j] as string)}\t${c.probabilities[j]}\t${lastCode}\t${c.decisions[j]}\t${reasons === undefined || reasons === null ? "\\N" : copyText(reasons)}\t${features}\n`;
      }
      yield text;
    }
  }
  return Readable.from(pieces());
}
