import type { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { Store } from "../store/db.js";
import type { PredictionsTable } from "../store/schema.js";
import { moduleWorker } from "../worker.js";
import type { WriterInit, WriterReply, WriterRequest } from "./prediction-writer.js";

export type PredictionRecord = PredictionsTable;

export interface PredictionLogOptions {
  flushMs: number;
  flushRows: number;
  /** Rows held while the store is unreachable; past this the oldest are dropped and counted. */
  maxBuffer: number;
}

export interface PredictionLogHooks {
  written(rows: number): void;
  dropped(rows: number): void;
  buffered(rows: number): void;
  /** A write the store refused (or a writer thread that died); its rows stay buffered for the next attempt. */
  failed(): void;
  /** Rows the store refused one by one while it took the others: set aside (logged), so they block nothing. */
  rejected(rows: number): void;
}

/** Rows per write: one transaction (SQLite) or one INSERT of 12 × 500 parameters (PostgreSQL). */
const WRITE_ROWS = 500;

/** Failed writes of a batch in a row before it is split to find the rows the store refuses. */
const ISOLATE_AFTER = 3;

/** Where batches go; a write stores all of its rows or none. */
interface Sink {
  write(rows: PredictionRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Writes predictions to the store in batches, off the request path: requests only append to a buffer (bounded by
 * `maxBuffer`); a timer (every `flushMs`) or a full batch (`flushRows`) hands it, a batch at a time, to a writer
 * thread, so no store work runs on the event loop. A failed write keeps its rows for the next attempt.
 * `close()` writes everything still buffered, so nothing accepted before a graceful shutdown is lost.
 */
export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  /** Rows handed to the sink and not yet confirmed; they count against `maxBuffer` but are never dropped. */
  private inFlight = 0;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private soon = false;
  private failures = 0;

  private constructor(
    private readonly sink: Sink,
    private readonly options: PredictionLogOptions,
    private readonly log: Logger,
    private readonly hooks: PredictionLogHooks,
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  /**
   * A log writing to `store` from a writer thread of its own, started (store opened) before this resolves. An
   * in-memory SQLite store exists only on its one connection, so it is written from this thread instead.
   */
  static async open(store: Store, options: PredictionLogOptions, log: Logger, hooks: PredictionLogHooks): Promise<PredictionLog> {
    let sink: Sink;
    if (store.sqlite?.memory === true) {
      sink = {
        write: async (rows) => {
          await store.db.insertInto("predictions").values(rows).execute();
        },
        close: async () => undefined,
      };
    } else {
      const thread = new WriterThread(store.url, log);
      await thread.start();
      sink = thread;
    }
    return new PredictionLog(sink, options, log, hooks);
  }

  /** Rows accepted and not yet written. */
  get pending(): number {
    return this.buffer.length + this.inFlight;
  }

  append(rows: readonly PredictionRecord[]): void {
    for (const row of rows) this.buffer.push(row);
    this.enforceBound();
    this.hooks.buffered(this.pending);
    if (this.buffer.length >= this.options.flushRows && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        void this.flush();
      });
    }
  }

  private enforceBound(): void {
    const over = Math.min(this.pending - this.options.maxBuffer, this.buffer.length);
    if (over <= 0) return;
    this.buffer.splice(0, over);
    this.hooks.dropped(over);
    this.log.error({ event: "predictions.dropped", rows: over }, "prediction log buffer is full (is the store reachable?); oldest rows dropped");
  }

  /** Write what is buffered now; concurrent calls share one writer, so rows are written in order, once. */
  flush(): Promise<void> {
    if (this.running !== null) return this.running;
    if (this.buffer.length === 0) return Promise.resolve();
    this.running = this.writeAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const chunk = this.buffer.splice(0, WRITE_ROWS);
      this.inFlight = chunk.length;
      let written = chunk.length;
      try {
        if (this.failures >= ISOLATE_AFTER) written = await this.isolate(chunk);
        else await this.sink.write(chunk);
      } catch (err) {
        this.inFlight = 0;
        this.buffer = chunk.concat(this.buffer);
        this.enforceBound();
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

  /** Stop the timer and write everything buffered; after `attempts` failed rounds the rest is reported lost. */
  async close(attempts = 5): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < attempts && this.pending > 0; i++) {
      await this.running;
      await this.flush();
      if (this.buffer.length > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
    if (this.buffer.length > 0) {
      this.hooks.dropped(this.buffer.length);
      this.log.error({ event: "predictions.lost", rows: this.buffer.length }, "shutting down with predictions the store would not take");
      this.buffer = [];
      this.hooks.buffered(0);
    }
    await this.sink.close();
  }
}

/**
 * The API side of the writer thread (prediction-writer.ts). One thread at a time; if it dies, the writes it held
 * fail (their rows go back to the buffer) and the next write starts a new one.
 */
class WriterThread implements Sink {
  private worker: Promise<Worker> | null = null;
  private nextId = 0;
  private closing = false;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  start(): Promise<Worker> {
    if (this.worker !== null) return this.worker;
    const started = new Promise<Worker>((resolve, reject) => {
      const worker = moduleWorker(import.meta.url, "prediction-writer", { url: this.url } satisfies WriterInit);
      worker.on("message", (reply: WriterReply) => {
        if ("ready" in reply) {
          // Idle, the thread does not hold the process open (as the flush timer does not); a write in flight does.
          worker.unref();
          resolve(worker);
        } else if ("failed" in reply) reject(new Error(`the prediction writer cannot open the store: ${reply.failed}`));
        else {
          const waiter = this.waiting.get(reply.id);
          this.waiting.delete(reply.id);
          if (this.waiting.size === 0) worker.unref();
          if (reply.error === undefined) waiter?.resolve();
          else waiter?.reject(new Error(reply.error));
        }
      });
      worker.on("error", (err) => {
        this.log.error({ event: "predictions.writer_failed", err }, "the prediction writer thread failed");
      });
      worker.on("exit", (code) => {
        if (this.worker === started) this.worker = null;
        const err = new Error(`the prediction writer thread exited with code ${code}`);
        reject(err);
        for (const waiter of this.waiting.values()) waiter.reject(err);
        this.waiting.clear();
        if (!this.closing) this.log.error({ event: "predictions.writer_exited", code }, "the prediction writer thread exited; the next write starts a new one");
      });
    });
    this.worker = started;
    return started;
  }

  async write(rows: PredictionRecord[]): Promise<void> {
    const worker = await this.start();
    const id = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, rows } satisfies WriterRequest);
    });
  }

  /** Let the thread finish its writes and close its connection, then wait for it to exit. */
  async close(): Promise<void> {
    this.closing = true;
    const worker = await this.worker?.catch(() => null);
    if (worker === null || worker === undefined || worker.threadId === -1) return;
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.ref();
    worker.postMessage({ close: true } satisfies WriterRequest);
    const timer = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
