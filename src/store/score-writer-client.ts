import { startCallWorker, type WorkerCalls } from "../worker.js";
import type { Store } from "./db.js";
import { type ChunkWrite, processOwner } from "./runs.js";
import type { ScoreWriterInit, ScoreWriterRequest } from "./score-writer.js";

/** The main-thread side of the score writer thread: write() resolves once the chunk is committed. */
export class ScoreWriter {
  private constructor(private readonly calls: WorkerCalls<ScoreWriterRequest, null>) {}

  /** A writer thread for a file-backed SQLite store; null for PostgreSQL or an in-memory SQLite (no second connection can see it). */
  static async forStore(store: Store): Promise<ScoreWriter | null> {
    if (store.sqlite === null || store.sqlite.memory) return null;
    const init: ScoreWriterInit = { path: store.sqlite.name, owner: processOwner() };
    return new ScoreWriter(await startCallWorker(import.meta.url, "score-writer", init, "score writer thread"));
  }

  /** Commit one chunk (one transaction, in the order written); a ChurnopsError (run_locked) keeps its code. */
  async write(runId: string, chunk: ChunkWrite): Promise<void> {
    await this.calls.call({ runId, chunk });
  }

  close(): Promise<void> {
    return this.calls.close();
  }
}
