import { parentPort, workerData } from "node:worker_threads";
import { type CodedScores, ScoreFileSink } from "./file-sink.js";

/**
 * The thread that writes a batch run's scores file. Handing each chunk to DuckDB (an id string per row, then
 * the appends) was a third of the scoring thread's time; here it overlaps with reading, validating and scoring
 * the next chunk. Chunks arrive and are appended in order; `close` writes the file, `discard` drops it.
 */
export interface FileSinkInit {
  path: string;
}

export type FileSinkRequest = { id: number } & ({ append: CodedScores } | { close: true } | { discard: true });

export type FileSinkReply = { ready: true } | { failed: string } | { id: number; error?: string; rows?: number };

const port = parentPort;
if (port === null) throw new Error("file-sink-worker.ts must run in a worker thread");
const init = workerData as FileSinkInit;
try {
  const sink = await ScoreFileSink.open(init.path);
  port.on("message", async (req: FileSinkRequest) => {
    try {
      if ("append" in req) sink.appendCoded(req.append);
      else if ("close" in req) await sink.close();
      else sink.discard();
      port.postMessage({ id: req.id, rows: sink.count } satisfies FileSinkReply);
    } catch (err) {
      port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies FileSinkReply);
    }
  });
  port.postMessage({ ready: true } satisfies FileSinkReply);
} catch (err) {
  port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies FileSinkReply);
}
