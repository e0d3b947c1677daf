import { workerData } from "node:worker_threads";
import { answerCalls } from "../worker.js";
import { type CodedScores, ScoreFileSink } from "./file-sink.js";

/**
 * The thread that writes a batch run's scores file. Handing each chunk to DuckDB (an id string per row, then
 * the appends) was a third of the scoring thread's time; here it overlaps with reading, validating and scoring
 * the next chunk. Chunks arrive and are appended in order; `close` writes the file, `discard` drops it.
 */
export interface FileSinkInit {
  path: string;
  /** reason_1..N columns (`--reasons N`), 0 for none. */
  reasons: number;
}

export type FileSinkRequest = { append: CodedScores } | { close: true } | { discard: true };

const init = workerData as FileSinkInit;
answerCalls<FileSinkRequest, null>("file-sink-worker.ts", async () => {
  const sink = await ScoreFileSink.open(init.path, init.reasons);
  return async (req) => {
    if ("append" in req) sink.appendCoded(req.append);
    else if ("close" in req) await sink.close();
    else sink.discard();
    return null;
  };
});
