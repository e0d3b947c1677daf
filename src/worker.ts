import { type TransferListItem, Worker } from "node:worker_threads";

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

/** What a request/reply worker posts once it is ready, or could not get ready. */
export type Handshake = { ready: true } | { failed: string };

/**
 * Start a module worker (see moduleWorker) that answers `{ id, … }` requests with one `{ id, … }` reply each,
 * once it has posted `{ ready: true }`; `{ failed }` rejects the start with `what` named.
 */
export async function startCallWorker<Reply extends { id: number }>(
  base: string,
  name: string,
  workerData: unknown,
  what: string,
  errorOf: (reply: Reply) => Error | null,
): Promise<WorkerCalls<Reply>> {
  const worker = moduleWorker(base, name, workerData);
  await new Promise<void>((resolve, reject) => {
    const onMessage = (reply: Handshake | Reply): void => {
      if ("ready" in reply) resolve();
      else if ("failed" in reply) reject(new Error(`${what} cannot start: ${reply.failed}`));
      else return;
      worker.off("message", onMessage);
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
  });
  return new WorkerCalls(worker, what, errorOf);
}

/** The caller's side of a request/reply worker: call() resolves with the request's reply (or its error). */
export class WorkerCalls<Reply extends { id: number }> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly worker: Worker,
    what: string,
    errorOf: (reply: Reply) => Error | null,
  ) {
    worker.on("message", (reply: Handshake | Reply) => {
      if (!("id" in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      const error = errorOf(reply);
      if (error === null) waiter?.resolve(reply);
      else waiter?.reject(error);
    });
    worker.on("error", (err) => this.failAll(err));
    worker.on("exit", (code) => this.failAll(new Error(`${what} exited with code ${code}`)));
  }

  call(request: object, transfer: TransferListItem[] = []): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
