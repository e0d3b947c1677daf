import type { Logger } from "pino";
import type { Store } from "../store/db.js";
import { type PredictionSink, predictionSink } from "../store/prediction-writer-client.js";
import { MAX_INSERT_ROWS, type PredictionRecord } from "../store/predictions.js";
import { ApiError } from "./errors.js";

export type { PredictionRecord } from "../store/predictions.js";

export interface PredictionLogOptions {
  flushMs: number;
  flushRows: number;
  /**
   * Rows held (waiting or being written) before new predictions wait for room: past this, a request's answer waits
   * until the writer has caught up (backpressure), so no accepted row is ever dropped to make room.
   */
  maxBuffer: number;
  /** How long a request waits for room in a full log before it is refused (503, its predictions not answered). */
  waitMs: number;
}

export interface PredictionLogHooks {
  written(rows: number): void;
  /** Rows accepted and never written: only at shutdown, when the store would not take them. */
  dropped(rows: number): void;
  buffered(rows: number): void;
  /** A write the store refused (or a writer thread that died); its rows stay buffered for the next attempt. */
  failed(): void;
  /** Rows the store refused one by one while it took the others: set aside (logged), so they block nothing. */
  rejected(rows: number): void;
  /** Predictions not answered (503) because the log stayed full for `waitMs`: never accepted, so never lost. */
  refused(rows: number): void;
}

/**
 * Rows per write: one transaction (SQLite) or one INSERT (PostgreSQL), at most the insert's MAX_INSERT_ROWS. Each
 * write is also one structured clone of its rows on the event loop (postMessage to the writer thread), so it stays
 * a few hundred rows: a single prediction never waits behind a long copy.
 */
const WRITE_ROWS = Math.min(500, MAX_INSERT_ROWS);

/** Failed writes of a batch in a row before it is split to find the rows the store refuses. */
const ISOLATE_AFTER = 3;

interface Waiter {
  rows: readonly PredictionRecord[];
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Writes predictions to the store in batches, off the request path: requests append to a buffer; a timer (every
 * `flushMs`) or a full batch (`flushRows`) hands it, a batch at a time, to a writer thread, so no store work runs
 * on the event loop. A failed write keeps its rows for the next attempt. The buffer is bounded with backpressure,
 * not by dropping: when `maxBuffer` rows are held, `accept` waits for room (up to `waitMs`, then refuses with a
 * 503), so every row accepted stays until it is written. `close()` writes everything still buffered, so nothing
 * accepted before a graceful shutdown is lost.
 */
export class PredictionLog {
  /** Rows not yet handed to the sink, in batches as appended (a queue of arrays: no per-row shifting). */
  private queue: PredictionRecord[][] = [];
  private queued = 0;
  /** Rows handed to the sink and not yet confirmed. */
  private inFlight = 0;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private soon = false;
  private failures = 0;
  private closed = false;
  private readonly waiters: Waiter[] = [];

  private constructor(
    private readonly sink: PredictionSink,
    private readonly options: PredictionLogOptions,
    private readonly log: Logger,
    private readonly hooks: PredictionLogHooks,
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  /**
   * A log writing to `store` from a writer thread of its own, started (store opened) before this resolves (see
   * predictionSink: an in-memory SQLite store is written from this thread).
   */
  static async open(store: Store, options: PredictionLogOptions, log: Logger, hooks: PredictionLogHooks): Promise<PredictionLog> {
    return new PredictionLog(await predictionSink(store), options, log, hooks);
  }

  /** Rows accepted and not yet written. */
  get pending(): number {
    return this.queued + this.inFlight;
  }

  /** The log holds `maxBuffer` rows or more: new rows wait for room. */
  get full(): boolean {
    return this.pending >= this.options.maxBuffer;
  }

  /**
   * Take `rows` once there is room: at once while the log holds fewer than `maxBuffer` rows, else after the
   * writer has made room. Rejects (ApiError 503, rows not taken) after `waitMs` without room, or when the log
   * closes meanwhile; the caller then must not answer the predictions as if they were logged.
   */
  async accept(rows: readonly PredictionRecord[]): Promise<void> {
    if (rows.length === 0) return;
    if (this.closed) throw this.refusal(rows.length, "the server is shutting down");
    if (!this.full && this.waiters.length === 0) {
      this.append(rows);
      return;
    }
    try {
      // Appended by wake(), in arrival order, as writes make room.
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          rows,
          resolve,
          reject,
          timer: setTimeout(() => {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            reject(new Error("timeout"));
          }, this.options.waitMs),
        };
        this.waiters.push(waiter);
        void this.flush();
      });
    } catch {
      throw this.refusal(
        rows.length,
        this.closed ? "the server is shutting down" : `the prediction log stayed full for ${this.options.waitMs} ms (is the store reachable?)`,
      );
    }
  }

  private refusal(rows: number, why: string): ApiError {
    this.hooks.refused(rows);
    this.log.warn({ event: "predictions.refused", rows, buffered: this.pending }, `predictions not answered: ${why}`);
    return new ApiError(503, "prediction_log_full", `predictions cannot be logged now: ${why}; retry later`);
  }

  /** Take the rows of waiting requests, oldest first, while there is room, and let them answer. */
  private wake(): void {
    while (this.waiters.length > 0 && !this.full) {
      const waiter = this.waiters.shift() as Waiter;
      clearTimeout(waiter.timer);
      this.append(waiter.rows);
      waiter.resolve();
    }
  }

  /** Take `rows` now, whatever the bound (accept() is the bounded way in; tests and close paths use this). */
  append(rows: readonly PredictionRecord[]): void {
    if (rows.length === 0) return;
    this.queue.push(rows as PredictionRecord[]);
    this.queued += rows.length;
    this.hooks.buffered(this.pending);
    if (this.queued >= this.options.flushRows && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        void this.flush();
      });
    }
  }

  /** Up to `n` rows from the front of the queue (whole appended arrays where they fit). */
  private take(n: number): PredictionRecord[] {
    const out: PredictionRecord[] = [];
    while (out.length < n && this.queue.length > 0) {
      const head = this.queue[0] as PredictionRecord[];
      const room = n - out.length;
      if (head.length <= room) {
        this.queue.shift();
        for (const r of head) out.push(r);
      } else {
        for (let i = 0; i < room; i++) out.push(head[i] as PredictionRecord);
        this.queue[0] = head.slice(room);
      }
    }
    this.queued -= out.length;
    return out;
  }

  /** Write what is buffered now; concurrent calls share one writer, so rows are written in order, once. */
  flush(): Promise<void> {
    if (this.running !== null) return this.running;
    if (this.queued === 0) return Promise.resolve();
    this.running = this.writeAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async writeAll(): Promise<void> {
    while (this.queued > 0) {
      const chunk = this.take(WRITE_ROWS);
      this.inFlight = chunk.length;
      let written = chunk.length;
      try {
        if (this.failures >= ISOLATE_AFTER) written = await this.isolate(chunk);
        else await this.sink.write(chunk);
      } catch (err) {
        this.inFlight = 0;
        this.queue.unshift(chunk);
        this.queued += chunk.length;
        this.hooks.buffered(this.pending);
        this.failures++;
        this.hooks.failed();
        // Rate-limit the complaint: one line per failure streak of ten, not one per timer tick.
        if (this.failures % 10 === 1) {
          this.log.error({ event: "predictions.write_failed", err, buffered: this.pending, failures: this.failures }, "cannot write predictions; will retry");
        }
        return;
      }
      this.inFlight = 0;
      this.failures = 0;
      this.hooks.written(written);
      this.hooks.buffered(this.pending);
      this.wake();
    }
  }

  /**
   * A batch that keeps failing may hold a row the store will never take (one bad row fails its whole INSERT).
   * Split it in halves until each part is written or is a single row. Refused single rows are set aside (counted
   * and logged). Splitting the left half first, one bad row costs at most depth + 1 failures before some write
   * succeeds; more than that with nothing written means the store itself is failing: stop, keep the whole batch
   * for the next attempt. Returns the rows written.
   */
  private async isolate(chunk: PredictionRecord[]): Promise<number> {
    const refused: { row: PredictionRecord; error: unknown }[] = [];
    const outage = Math.ceil(Math.log2(Math.max(2, chunk.length))) + 1;
    let written = 0;
    let failures = 0;
    const part = async (rows: PredictionRecord[]): Promise<void> => {
      try {
        await this.sink.write(rows);
        written += rows.length;
      } catch (error) {
        if (written === 0 && ++failures > outage) throw error;
        if (rows.length === 1) refused.push({ row: rows[0] as PredictionRecord, error });
        else {
          const half = Math.ceil(rows.length / 2);
          await part(rows.slice(0, half));
          await part(rows.slice(half));
        }
      }
    };
    await part(chunk);
    if (written === 0) throw refused[0]?.error ?? new Error("no row of the batch could be written");
    if (refused.length > 0) {
      this.hooks.rejected(refused.length);
      this.log.error(
        { event: "predictions.rejected", rows: refused.length, request_ids: refused.slice(0, 10).map((r) => r.row.request_id), err: refused[0]?.error },
        "the store refused some predictions while it took the others; they are set aside",
      );
    }
    return written;
  }

  /**
   * Stop the timer and write everything buffered (requests still waiting for room get it as writes make it);
   * after `attempts` failed rounds the rest is reported lost.
   */
  async close(attempts = 5): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.closed = true;
    for (let i = 0; i < attempts && this.pending > 0; i++) {
      await this.running;
      await this.flush();
      if (this.queued > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("closed"));
    }
    if (this.queued > 0) {
      this.hooks.dropped(this.queued);
      this.log.error({ event: "predictions.lost", rows: this.queued }, "shutting down with predictions the store would not take");
      this.queue = [];
      this.queued = 0;
      this.hooks.buffered(0);
    }
    await this.sink.close();
  }
}
