import { ChurnopsError } from "../errors.js";
import { startCallWorker, type WorkerCalls } from "../worker.js";
import type { Store } from "./db.js";
import { type ChunkWrite, processOwner } from "./runs.js";
import type { ScoreWriterInit, ScoreWriterReply, WireError } from "./score-writer.js";

type Reply = Extract<ScoreWriterReply, { id: number }>;

/** The main-thread side of the score writer thread: write() resolves once the chunk is committed. */
export class ScoreWriter {
  private constructor(private readonly calls: WorkerCalls<Reply>) {}

  /** A writer thread for a file-backed SQLite store; null for PostgreSQL or an in-memory SQLite (no second connection can see it). */
  static async forStore(store: Store): Promise<ScoreWriter | null> {
    if (store.sqlite === null || store.sqlite.memory) return null;
    const init: ScoreWriterInit = { path: store.sqlite.name, owner: processOwner() };
    const calls = await startCallWorker<Reply>(import.meta.url, "score-writer", init, "score writer thread", (reply) =>
      reply.error === undefined ? null : fromWire(reply.error),
    );
    return new ScoreWriter(calls);
  }

  /** Commit one chunk (one transaction, in the order written). */
  async write(runId: string, chunk: ChunkWrite): Promise<void> {
    await this.calls.call({ runId, chunk });
  }

  close(): Promise<void> {
    return this.calls.close();
  }
}

function fromWire(error: WireError): Error {
  return error.churnops === undefined ? new Error(error.message) : new ChurnopsError(error.churnops.code, error.message, { exitCode: error.churnops.exitCode });
}
