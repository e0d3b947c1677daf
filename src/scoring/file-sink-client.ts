import type { ScoreColumns } from "../store/runs.js";
import { startCallWorker, type WorkerCalls } from "../worker.js";
import { codeScores } from "./file-sink.js";
import type { FileSinkInit, FileSinkRequest } from "./file-sink-worker.js";

/** Chunks handed over and not yet appended; more would let a slow disk grow memory without bound. */
const MAX_IN_FLIGHT = 2;

/**
 * The scoring thread's side of the file sink thread (see file-sink-worker.ts). `append` hands a chunk over and
 * returns once at most MAX_IN_FLIGHT chunks wait; an append that failed stops the run at the next call.
 */
export class ScoreFileWriter {
  private readonly inFlight: Promise<Error | null>[] = [];
  private ended = false;

  private constructor(
    private readonly path: string,
    private readonly calls: WorkerCalls<FileSinkRequest, null>,
  ) {}

  static async open(path: string, reasons = 0): Promise<ScoreFileWriter> {
    return new ScoreFileWriter(path, await startCallWorker(import.meta.url, "file-sink-worker", { path, reasons } satisfies FileSinkInit, "file sink thread"));
  }

  async append(scores: ScoreColumns): Promise<void> {
    const coded = codeScores(scores);
    const sent = this.calls.call({ append: coded }, [
      coded.probabilities.buffer as ArrayBuffer,
      coded.bandCodes.buffer as ArrayBuffer,
      coded.decisions.buffer as ArrayBuffer,
      ...(coded.reasons === undefined ? [] : [coded.reasons.featureCodes.buffer as ArrayBuffer, coded.reasons.textCodes.buffer as ArrayBuffer]),
    ]);
    this.inFlight.push(
      sent.then(
        () => null,
        (e: unknown) => this.failure(e),
      ),
    );
    while (this.inFlight.length > MAX_IN_FLIGHT) await this.settleOldest();
  }

  /** Write the file once every chunk is appended; the thread ends either way. */
  async close(): Promise<void> {
    this.ended = true;
    try {
      while (this.inFlight.length > 0) await this.settleOldest();
      await this.calls.call({ close: true }).catch((e: unknown) => {
        throw this.failure(e);
      });
    } finally {
      await this.calls.close();
    }
  }

  /** A failed run: remove the scratch data without writing the file, and end the thread (after close: nothing). */
  async discard(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await Promise.all(this.inFlight.splice(0));
      await this.calls.call({ discard: true });
    } catch {
      // The thread may be the reason the run failed; it is ended below all the same.
    } finally {
      await this.calls.close();
    }
  }

  private failure(e: unknown): Error {
    return new Error(`cannot write ${this.path}: ${e instanceof Error ? e.message : String(e)}`);
  }

  private async settleOldest(): Promise<void> {
    const failed = await this.inFlight.shift();
    if (failed !== null && failed !== undefined) throw failed;
  }
}
