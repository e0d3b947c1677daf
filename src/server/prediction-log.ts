import type { Logger } from "pino";
import type { Store } from "../store/db.js";
import type { PredictionsTable } from "../store/schema.js";

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
}

/**
 * Rows per INSERT. PostgreSQL inserts asynchronously: 500 rows (12 × 500 parameters) per round trip. SQLite
 * (better-sqlite3) inserts synchronously on the event loop, about 12 µs a row: 64-row slices with a yield between
 * them keep each pause near 1 ms, so logging never adds a multi-millisecond stall to a request's latency.
 */
const INSERT_ROWS = { postgres: 500, sqlite: 64 } as const;

/**
 * Writes predictions to the store in batches, off the request path: requests only append to a buffer; a timer
 * (every `flushMs`) or a full batch (`flushRows`) writes it out. A failed write keeps the rows for the next attempt.
 * `close()` writes everything still buffered, so nothing accepted before a graceful shutdown is lost.
 */
export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private soon = false;
  private failures = 0;

  constructor(
    private readonly store: Store,
    private readonly options: PredictionLogOptions,
    private readonly log: Logger,
    private readonly hooks: PredictionLogHooks,
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  get pending(): number {
    return this.buffer.length;
  }

  append(rows: readonly PredictionRecord[]): void {
    for (const row of rows) this.buffer.push(row);
    const over = this.buffer.length - this.options.maxBuffer;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.hooks.dropped(over);
      this.log.error({ event: "predictions.dropped", rows: over }, "prediction log buffer is full (is the store reachable?); oldest rows dropped");
    }
    this.hooks.buffered(this.buffer.length);
    if (this.buffer.length >= this.options.flushRows && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        void this.flush();
      });
    }
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
    const slice = INSERT_ROWS[this.store.dialect];
    while (this.buffer.length > 0) {
      const chunk = this.buffer.slice(0, slice);
      try {
        await this.store.db.insertInto("predictions").values(chunk).execute();
      } catch (err) {
        this.failures++;
        // Rate-limit the complaint: one line per failure streak of ten, not one per timer tick.
        if (this.failures % 10 === 1) {
          this.log.error(
            { event: "predictions.write_failed", err, buffered: this.buffer.length, failures: this.failures },
            "cannot write predictions; will retry",
          );
        }
        return;
      }
      this.failures = 0;
      this.buffer.splice(0, chunk.length);
      this.hooks.written(chunk.length);
      this.hooks.buffered(this.buffer.length);
      if (this.store.dialect === "sqlite") await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Stop the timer and write everything buffered; after `attempts` failed rounds the rest is reported lost. */
  async close(attempts = 5): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < attempts && this.buffer.length > 0; i++) {
      await this.running;
      await this.flush();
      if (this.buffer.length > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
    if (this.buffer.length > 0) {
      this.hooks.dropped(this.buffer.length);
      this.log.error({ event: "predictions.lost", rows: this.buffer.length }, "shutting down with predictions the store would not take");
      this.buffer = [];
    }
  }
}
