import { workerData } from "node:worker_threads";
import { answerCalls } from "../worker.js";
import { openStore, type Store } from "./db.js";
import { type PredictionRecord, predictionInserter } from "./predictions.js";

/**
 * The thread that writes the API's prediction log to the store. better-sqlite3 runs every statement (and a WAL
 * checkpoint's fsync) synchronously on its calling thread; done on the API's event loop, each write stalled every
 * request in flight. This thread owns its own connection to the same store (SQLite in WAL mode takes a second
 * connection; PostgreSQL a second pool) and writes each batch it is sent atomically, one batch at a time, in order.
 * It speaks the shared request/reply protocol of src/worker.ts (answerCalls); its client is prediction-writer-client.ts.
 */
export interface PredictionWriterInit {
  url: string;
}

/** A batch to insert, or (last) the request to close the store's connection. */
export type PredictionWriterRequest = { rows: PredictionRecord[] } | { close: true };

const init = workerData as PredictionWriterInit;
answerCalls<PredictionWriterRequest, null>("prediction-writer.ts", async () => {
  const store: Store = await openStore(init.url);
  const insert = predictionInserter(store);
  return async (request) => {
    if ("close" in request) await store.close();
    else await insert(request.rows);
    return null;
  };
});
