import { parentPort, workerData } from "node:worker_threads";
import { ChurnopsError, type ErrorCode } from "../errors.js";
import { openSqlite } from "./db.js";
import { type ChunkWrite, writeChunkSqlite } from "./runs.js";

/**
 * The thread that commits a batch run's chunks to a SQLite store. better-sqlite3 runs each statement on its
 * calling thread, and at millions of rows SQLite's own work is most of a run's time; on its own thread (with its
 * own connection; WAL mode allows it) it overlaps with reading, validating and scoring the next chunk. Each chunk
 * is still one transaction (claim renewed, scores, quarantine, checkpoint), committed in order.
 */
export interface ScoreWriterInit {
  path: string;
  /** The lease owner of the run: the scoring process, not this thread. */
  owner: string;
}

export interface ScoreWriterRequest {
  id: number;
  runId: string;
  chunk: ChunkWrite;
}

/** A failed write: a ChurnopsError keeps its code and exit code across the thread boundary. */
export interface WireError {
  message: string;
  churnops?: { code: ErrorCode; exitCode: number };
}

export type ScoreWriterReply = { ready: true } | { failed: string } | { id: number; error?: WireError };

const port = parentPort;
if (port === null) throw new Error("score-writer.ts must run in a worker thread");
const init = workerData as ScoreWriterInit;
try {
  const db = openSqlite(init.path);
  port.on("message", (req: ScoreWriterRequest) => {
    try {
      writeChunkSqlite(db, req.runId, req.chunk, init.owner);
      port.postMessage({ id: req.id } satisfies ScoreWriterReply);
    } catch (err) {
      const error: WireError =
        err instanceof ChurnopsError
          ? { message: err.message, churnops: { code: err.code, exitCode: err.exitCode } }
          : { message: err instanceof Error ? err.message : String(err) };
      port.postMessage({ id: req.id, error } satisfies ScoreWriterReply);
    }
  });
  port.postMessage({ ready: true } satisfies ScoreWriterReply);
} catch (err) {
  port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies ScoreWriterReply);
}
