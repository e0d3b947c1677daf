import type { Worker } from "node:worker_threads";
import { ChurnopsError } from "../errors.js";
import { moduleWorker } from "../worker.js";
import type { Store } from "./db.js";
import { type ChunkWrite, processOwner } from "./runs.js";
import type { ScoreWriterInit, ScoreWriterReply, ScoreWriterRequest, WireError } from "./score-writer.js";

/** The main-thread side of the score writer thread: write() resolves once the chunk is committed. */
export class ScoreWriter {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: ScoreWriterReply) => {
      if (!("id" in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error === undefined) waiter?.resolve();
      else waiter?.reject(fromWire(reply.error));
    });
    worker.on("error", (err) => this.failAll(err));
    worker.on("exit", (code) => this.failAll(new Error(`score writer thread exited with code ${code}`)));
  }

  /** A writer thread for a file-backed SQLite store; null for PostgreSQL or an in-memory SQLite (no second connection can see it). */
  static async forStore(store: Store): Promise<ScoreWriter | null> {
    if (store.sqlite === null || store.sqlite.memory) return null;
    const init: ScoreWriterInit = { path: store.sqlite.name, owner: processOwner() };
    const worker = moduleWorker(import.meta.url, "score-writer", init);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: ScoreWriterReply): void => {
        if ("ready" in reply) resolve();
        else if ("failed" in reply) reject(new Error(`score writer thread cannot open the store: ${reply.failed}`));
        else return;
        worker.off("message", onMessage);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
    return new ScoreWriter(worker);
  }

  /** Commit one chunk (one transaction, in the order written). */
  write(runId: string, chunk: ChunkWrite): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, runId, chunk } satisfies ScoreWriterRequest);
    });
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}

function fromWire(error: WireError): Error {
  return error.churnops === undefined ? new Error(error.message) : new ChurnopsError(error.churnops.code, error.message, { exitCode: error.churnops.exitCode });
}
