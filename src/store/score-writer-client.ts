import { startCallWorker, type WorkerCalls } from "../worker.js";
import type { Store } from "./db.js";
import { type ChunkWrite, processOwner, writeChunk } from "./runs.js";
import type { ScoreWriterInit, ScoreWriterRequest } from "./score-writer.js";

/** Commits a batch run's chunks behind the scoring: write() resolves once the chunk is committed, in order. */
export interface ChunkWriter {
  /** Commit one chunk (one transaction, in the order written); a ChurnopsError (run_locked) keeps its code. */
  write(runId: string, chunk: ChunkWrite): Promise<void>;
  close(): Promise<void>;
}

/** The main-thread side of the score writer thread (SQLite). */
export class ScoreWriter implements ChunkWriter {
  private constructor(private readonly calls: WorkerCalls<ScoreWriterRequest, null>) {}

  /**
   * A writer thread for a file-backed SQLite store; for PostgreSQL, a queue on this thread whose COPY runs while
   * the next chunk is read and scored (the server does the work; one chunk at a time, in order). Null for an
   * in-memory SQLite (no second connection can see it).
   */
  static async forStore(store: Store): Promise<ChunkWriter | null> {
    if (store.dialect === "postgres") return new SerialWriter(store);
    if (store.sqlite === null || store.sqlite.memory) return null;
    const init: ScoreWriterInit = { path: store.sqlite.name, owner: processOwner() };
    return new ScoreWriter(await startCallWorker(import.meta.url, "score-writer", init, "score writer thread"));
  }

  async write(runId: string, chunk: ChunkWrite): Promise<void> {
    await this.calls.call({ runId, chunk });
  }

  close(): Promise<void> {
    return this.calls.close();
  }
}

/** Chunks written one after another on this thread's event loop: chunk k+1 starts once chunk k committed. */
class SerialWriter implements ChunkWriter {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store) {}

  write(runId: string, chunk: ChunkWrite): Promise<void> {
    const next = this.tail.then(() => writeChunk(this.store, runId, chunk));
    // A failed chunk fails its own write(); the ones queued after it are not attempted.
    this.tail = next;
    return next;
  }

  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
  }
}
