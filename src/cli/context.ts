import { type Config, loadConfig } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import type { Store } from "../store/db.js";

/** What every command gets: the config (read once), a logger, and the store on demand. */
export interface CommandContext {
  config: Config;
  log: Logger;
  store(): Promise<Store>;
  /**
   * Report what the command could not do although it printed its result (one stderr line each, like an error)
   * and exit 1.
   */
  fail(lines: readonly string[]): void;
  /** The exit code of a command that did not throw: 0, or 1 after `fail`. */
  readonly exitCode: number;
  close(): Promise<void>;
}

export function createContext(configFile?: string): CommandContext {
  const config = loadConfig({ file: configFile });
  const log = createLogger();
  let store: Promise<Store> | undefined;
  let exitCode = 0;
  return {
    config,
    log,
    fail: (lines) => {
      for (const line of lines) process.stderr.write(`churnops: ${line}\n`);
      exitCode = 1;
    },
    get exitCode() {
      return exitCode;
    },
    store: () => {
      // Loaded on first use: the database drivers are not needed by commands that never open the store.
      store ??= import("../store/db.js").then(({ openStore }) => openStore(config.store_url));
      return store;
    },
    close: async () => {
      // A store that failed to open has nothing to close; its error was reported where it was awaited.
      await (await store?.catch(() => null))?.close();
    },
  };
}

/** Print a result: JSON on stdout for machines (snake_case keys, see `snakeKeys`), or the human text. */
export function output(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(snakeKeys(value), null, 2)}\n` : `${human()}\n`);
}

const CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

/**
 * The one JSON convention of the CLI and the API: snake_case keys, like bundle.json and the store's columns. The
 * modules' TypeScript types are camelCase, so every `--json` result is converted here, at the output boundary.
 * Only camelCase identifiers change; keys that are data (band names, customer ids) are lower case or not
 * identifiers and pass through.
 */
export function snakeKeys<T>(value: T): SnakeKeys<T> {
  return convert(value) as SnakeKeys<T>;
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [CAMEL.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k, convert(v)]));
}

type Snake<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${Snake<T>}` : S;

/** The type of `snakeKeys(value)`: what a `--json` output holds for a value of type T. */
export type SnakeKeys<T> = T extends readonly (infer U)[]
  ? SnakeKeys<U>[]
  : T extends object
    ? { [K in keyof T as K extends string ? Snake<K> : K]: SnakeKeys<T[K]> }
    : T;

export function parseDate(value: string, flag: string): string {
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(value) ||
    Number.isNaN(Date.parse(`${value}T00:00:00Z`)) ||
    new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value
  ) {
    throw new ChurnopsError("bad_input", `${flag} ${value}: expected a date as YYYY-MM-DD`, { field: flag.replace(/^--/, "") });
  }
  return value;
}

export function parseIntFlag(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ChurnopsError("bad_input", `${flag} ${value}: expected a whole number from ${min} to ${max}`, { field: flag.replace(/^--/, "") });
  return n;
}

export function parseChoice<T extends string>(value: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw new ChurnopsError("bad_input", `${flag} ${value}: expected one of ${choices.join(", ")}`, { field: flag.replace(/^--/, "") });
  return value as T;
}

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}
