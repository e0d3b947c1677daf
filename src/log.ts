import { type DestinationStream, type Logger, pino } from "pino";
import { PinoPretty } from "pino-pretty";
import { ChurnopsError } from "./errors.js";

export type LogFormat = "human" | "json";

/**
 * Which log lines to write: `CHURNOPS_LOG_FORMAT` (human | json) when set, otherwise short human lines when stderr is
 * a terminal (a person reads them) and JSON lines when it is a file or pipe (a collector parses them).
 */
export function logFormat(env: NodeJS.ProcessEnv = process.env, terminal: boolean = process.stderr.isTTY === true): LogFormat {
  const asked = env.CHURNOPS_LOG_FORMAT;
  if (asked === undefined || asked === "") return terminal ? "human" : "json";
  if (asked === "human" || asked === "json") return asked;
  throw new ChurnopsError("bad_config", `CHURNOPS_LOG_FORMAT ${asked}: expected human or json`, { field: "CHURNOPS_LOG_FORMAT" });
}

/** Fields every line has (or that only a collector needs): left out of human lines. */
const SHARED = new Set(["level", "time", "msg", "pid", "hostname", "app", "event"]);

/** `message (key=value, …)`: the event's own fields after its message, objects as compact JSON. */
export function humanMessage(log: Record<string, unknown>, messageKey: string): string {
  const fields = Object.entries(log)
    .filter(([k, v]) => !SHARED.has(k) && k !== messageKey && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`);
  const message = String(log[messageKey] ?? "");
  return fields.length === 0 ? message : `${message} (${fields.join(", ")})`;
}

/** One line per event, `[HH:MM:ss] LEVEL: message (key=value, …)`, in UTC like the JSON lines' timestamps. */
export function humanLines(destination: number | NodeJS.WritableStream = 2, colorize = false): DestinationStream {
  return PinoPretty({
    destination,
    sync: true,
    colorize,
    hideObject: true,
    translateTime: "UTC:HH:MM:ss",
    ignore: "pid,hostname",
    messageFormat: humanMessage,
  });
}

/**
 * Logs to stderr so stdout stays free for results (`--json`): JSON lines, one event per line, or human lines (see
 * `logFormat`). Created on demand, never at import time.
 */
export function createLogger(
  bindings: Record<string, unknown> = {},
  level = process.env.CHURNOPS_LOG_LEVEL ?? "info",
  format: LogFormat = logFormat(),
): Logger {
  const options = { level, base: { app: "churnops", ...bindings }, timestamp: pino.stdTimeFunctions.isoTime };
  return pino(options, format === "human" ? humanLines(2, process.stderr.isTTY === true) : pino.destination(2));
}

export type { Logger };
