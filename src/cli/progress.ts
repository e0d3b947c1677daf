import { SingleBar } from "cli-progress";
import type { Logger } from "../log.js";
import type { BatchProgress } from "../scoring/batch.js";

/**
 * Progress for long batch work: a bar on a terminal, a log line every few seconds otherwise
 * (so CI logs and cron mails stay readable).
 */
export function batchProgress(log: Logger, label: string): { update: (p: BatchProgress) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      { format: `${label} {value} rows | scored {scored} | quarantined {quarantined} | {rate} rows/s`, stream: process.stderr, fps: 5 },
      undefined,
    );
    const started = performance.now();
    bar.start(0, 0, { scored: 0, quarantined: 0, rate: 0 });
    return {
      update: (p) => {
        const rate = Math.round(p.rowsDone / ((performance.now() - started) / 1000));
        bar.setTotal(p.rowsDone);
        bar.update(p.rowsDone, { scored: p.rowsScored, quarantined: p.rowsQuarantined, rate });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (p) => {
      const now = performance.now();
      if (now - last < 5000) return;
      last = now;
      log.info({ event: "progress", label, rows_done: p.rowsDone, rows_scored: p.rowsScored, rows_quarantined: p.rowsQuarantined }, label);
    },
    stop: () => undefined,
  };
}

/** Progress of work counted in steps with a known total (months judged, …): a bar on a terminal, nothing otherwise. */
export function stepProgress(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({ format: `${label} {value}/{total}`, stream: process.stderr, fps: 5 }, undefined);
  let started = false;
  return {
    update: (done, total) => {
      if (!started) bar.start(total, done);
      started = true;
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
