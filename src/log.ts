import { type Logger, pino } from "pino";

/**
 * Structured JSON logs, one event per line, to stderr so stdout stays free for results (`--json`).
 * Created on demand, never at import time.
 */
export function createLogger(bindings: Record<string, unknown> = {}, level = process.env.CHURNOPS_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { app: "churnops", ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}

export type { Logger };
