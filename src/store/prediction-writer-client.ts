import { startCallWorker, type WorkerCalls } from "../worker.js";
import type { Store } from "./db.js";
import type { PredictionWriterInit, PredictionWriterRequest } from "./prediction-writer.js";
import type { PredictionRecord } from "./predictions.js";
import { predictionInserter } from "./predictions.js";

/** Where the prediction log's batches go; a write stores all of its rows or none. */
export interface PredictionSink {
  write(rows: PredictionRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The sink for `store`: a writer thread with its own connection (prediction-writer.ts), started (store opened)
 * before this resolves. An in-memory SQLite store exists only on its one connection, so it is written from the
 * calling thread instead, through the same insert.
 */
export async function predictionSink(store: Store): Promise<PredictionSink> {
  if (store.sqlite?.memory === true) {
    const insert = predictionInserter(store);
    return { write: insert, close: async () => undefined };
  }
  const thread = new PredictionWriterThread(store.url);
  await thread.start();
  return thread;
}

/**
 * The main-thread side of the writer thread. One thread at a time; if it dies, the writes it held fail (the log
 * keeps their rows) and the next write starts a new one. Idle, the thread does not hold the process open.
 */
class PredictionWriterThread implements PredictionSink {
  private calls: Promise<WorkerCalls<PredictionWriterRequest, null>> | null = null;

  constructor(private readonly url: string) {}

  start(): Promise<WorkerCalls<PredictionWriterRequest, null>> {
    if (this.calls !== null) return this.calls;
    const started = startCallWorker<PredictionWriterRequest, null>(
      import.meta.url,
      "prediction-writer",
      { url: this.url } satisfies PredictionWriterInit,
      "the prediction writer thread",
      { unrefWhenIdle: true },
    );
    this.calls = started;
    // A thread that could not start is not kept: the next write tries a new one.
    started.catch(() => {
      if (this.calls === started) this.calls = null;
    });
    return started;
  }

  async write(rows: PredictionRecord[]): Promise<void> {
    let calls = await this.start();
    if (calls.exited) {
      this.calls = null;
      calls = await this.start();
    }
    await calls.call({ rows });
  }

  /** Let the thread close its connection (after the writes before this), then stop it. */
  async close(): Promise<void> {
    const calls = await this.calls?.catch(() => null);
    this.calls = null;
    if (calls === null || calls === undefined || calls.exited) return;
    await calls.call({ close: true }).catch(() => undefined);
    await calls.close();
  }
}
