import { parentPort, workerData } from "node:worker_threads";
import { openStore, type Store } from "../store/db.js";
import type { PredictionsTable } from "../store/schema.js";

/**
 * The thread that writes the prediction log to the store. better-sqlite3 runs every statement (and a WAL
 * checkpoint's fsync) synchronously on its calling thread; done on the API's event loop, each write stalled every
 * request in flight. This thread owns its own connection to the same store (SQLite in WAL mode takes a second
 * connection; PostgreSQL a second pool) and writes each batch it is sent in one transaction, one batch at a time.
 */
export interface WriterInit {
  url: string;
}

export type WriterRequest = { id: number; rows: PredictionsTable[] } | { close: true };

export type WriterReply = { ready: true } | { failed: string } | { id: number; error?: string };

const COLUMNS = [
  "id",
  "request_id",
  "customer_id",
  "variant",
  "model_name",
  "model_version",
  "probability",
  "band",
  "decision",
  "latency_ms",
  "shadow",
  "created_at",
] as const satisfies readonly (keyof PredictionsTable)[];

/** A function that writes one batch atomically: all of its rows or none. */
function batchWriter(store: Store): (rows: PredictionsTable[]) => Promise<void> {
  const sqlite = store.sqlite;
  if (sqlite === null) {
    return async (rows) => {
      await store.db.insertInto("predictions").values(rows).execute();
    };
  }
  // One prepared statement for the life of the thread (Kysely would build and prepare one per batch), prepared at
  // the first write so that a store refusing it fails that write (and is retried), not the thread.
  let all: ((rows: PredictionsTable[]) => void) | null = null;
  return async (rows) => {
    if (all === null) {
      const insert = sqlite.prepare(`INSERT INTO predictions (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((c) => `@${c}`).join(", ")})`);
      all = sqlite.transaction((batch: PredictionsTable[]) => {
        for (const row of batch) insert.run(row);
      });
    }
    all(rows);
  };
}

const port = parentPort;
if (port === null) throw new Error("prediction-writer.ts must run in a worker thread");
const init = workerData as WriterInit;
openStore(init.url).then(
  (store) => {
    const write = batchWriter(store);
    let queue: Promise<void> = Promise.resolve();
    port.on("message", (req: WriterRequest) => {
      if ("close" in req) {
        queue = queue.then(() => store.close()).finally(() => port.close());
        return;
      }
      queue = queue.then(() =>
        write(req.rows).then(
          () => port.postMessage({ id: req.id } satisfies WriterReply),
          (err: unknown) => port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies WriterReply),
        ),
      );
    });
    port.postMessage({ ready: true } satisfies WriterReply);
  },
  (err: unknown) => port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies WriterReply),
);
