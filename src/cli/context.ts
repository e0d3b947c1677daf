import { type Config, loadConfig } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import type { Store } from "../store/db.js";

/** What every command gets: the config (read once), a logger, and the store on demand. */
export interface CommandContext {
  config: Config;
  log: Logger;
  store(): Promise<Store>;
  close(): Promise<void>;
}

export function createContext(configFile?: string): CommandContext {
  const config = loadConfig({ file: configFile });
  const log = createLogger();
  let store: Promise<Store> | undefined;
  return {
    config,
    log,
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

/** Print a result: JSON on stdout for machines, or the human text. */
export function output(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

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
