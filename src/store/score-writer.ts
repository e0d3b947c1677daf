import { workerData } from "node:worker_threads";
import { answerCalls } from "../worker.js";
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
  runId: string;
  chunk: ChunkWrite;
}

const init = workerData as ScoreWriterInit;
answerCalls<ScoreWriterRequest, null>("score-writer.ts", async () => {
  const db = openSqlite(init.path);
  return (req) => {
    writeChunkSqlite(db, req.runId, req.chunk, init.owner);
    return null;
  };
});
