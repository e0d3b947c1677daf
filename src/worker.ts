import { Worker } from "node:worker_threads";

/**
 * A worker thread running the module `name` that sits next to the caller (`base` is the caller's import.meta.url).
 * Compiled, the caller is JavaScript and so is the worker. Run from source through tsx (tests, development), the
 * module is TypeScript, and worker threads do not inherit tsx's loader: the worker registers it first.
 */
export function moduleWorker(base: string, name: string, workerData: unknown): Worker {
  const fromSource = base.endsWith(".ts");
  const url = new URL(`./${name}.${fromSource ? "ts" : "js"}`, base);
  return fromSource
    ? new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true, workerData })
    : new Worker(url, { workerData });
}
