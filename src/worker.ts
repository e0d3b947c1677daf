import { parentPort, type TransferListItem, Worker } from "node:worker_threads";
import { ChurnopsError, type ErrorCode } from "./errors.js";

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

/** A failed call: a ChurnopsError keeps its code and exit code across the thread boundary. */
export interface WireError {
  message: string;
  churnops?: { code: ErrorCode; exitCode: number };
}

/** One call's answer: its result, or the error its request raised. */
export type CallReply<Result> = { id: number; result: Result; error?: undefined } | { id: number; error: WireError };

function toWire(err: unknown): WireError {
  return err instanceof ChurnopsError
    ? { message: err.message, churnops: { code: err.code, exitCode: err.exitCode } }
    : { message: err instanceof Error ? err.message : String(err) };
}

function fromWire(error: WireError): Error {
  return error.churnops === undefined ? new Error(error.message) : new ChurnopsError(error.churnops.code, error.message, { exitCode: error.churnops.exitCode });
}

/**
 * The worker's side of startCallWorker, run from a worker module: `open` prepares what the calls need (a
 * connection, a session, a file), then each request is answered with handle's result or the error it raised,
 * in the order the requests arrive. `transferOf` names result buffers to move rather than copy.
 */
export function answerCalls<Request, Result>(
  what: string,
  open: () => Promise<(request: Request) => Result | Promise<Result>>,
  transferOf: (result: Result) => TransferListItem[] = () => [],
): void {
  const port = parentPort;
  if (port === null) throw new Error(`${what} must run in a worker thread`);
  open().then(
    (handle) => {
      // One request at a time, in arrival order, even when `handle` is asynchronous (a PostgreSQL pool would
      // otherwise run two requests at once, and a closing request could overtake the writes before it).
      let queue: Promise<void> = Promise.resolve();
      port.on("message", (request: Request & { id: number }) => {
        queue = queue.then(async () => {
          let reply: CallReply<Result>;
          let transfer: TransferListItem[] = [];
          try {
            const result = await handle(request);
            reply = { id: request.id, result };
            transfer = transferOf(result);
          } catch (err) {
            reply = { id: request.id, error: toWire(err) };
          }
          port.postMessage(reply, transfer);
        });
      });
      port.postMessage({ ready: true } satisfies Handshake);
    },
    (err: unknown) => port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies Handshake),
  );
}

/**
 * Start a module worker (see moduleWorker) that answers calls through answerCalls, once it has posted
 * `{ ready: true }`; `{ failed }` rejects the start with `what` named.
 */
export async function startCallWorker<Request extends object, Result>(
  base: string,
  name: string,
  workerData: unknown,
  what: string,
  options: WorkerCallsOptions = {},
): Promise<WorkerCalls<Request, Result>> {
  const worker = moduleWorker(base, name, workerData);
  await new Promise<void>((resolve, reject) => {
    const onMessage = (reply: Handshake | CallReply<Result>): void => {
      if ("ready" in reply) resolve();
      else if ("failed" in reply) reject(new Error(`${what} cannot start: ${reply.failed}`));
      else return;
      worker.off("message", onMessage);
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`${what} exited with code ${code} before it was ready`)));
  });
  return new WorkerCalls(worker, what, options);
}

export interface WorkerCallsOptions {
  /**
   * An idle thread (no call waiting for its answer) does not hold the process open, as an unref'd timer does not;
   * a call in flight does. For background writers whose owner flushes them on close anyway.
   */
  unrefWhenIdle?: boolean;
}

/** The caller's side of a request/reply worker: call() resolves with the request's result (or rejects with its error). */
export class WorkerCalls<Request extends object, Result> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (result: Result) => void; reject: (e: Error) => void }>();
  private exitedWith: Error | null = null;

  constructor(
    private readonly worker: Worker,
    what: string,
    private readonly options: WorkerCallsOptions = {},
  ) {
    if (options.unrefWhenIdle === true) worker.unref();
    worker.on("message", (reply: Handshake | CallReply<Result>) => {
      if (!("id" in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      this.idle();
      if (reply.error === undefined) waiter?.resolve(reply.result);
      else waiter?.reject(fromWire(reply.error));
    });
    worker.on("error", (err) => this.failAll(err));
    worker.on("exit", (code) => {
      this.exitedWith = new Error(`${what} exited with code ${code}`);
      this.failAll(this.exitedWith);
    });
  }

  /** The thread has exited (crashed, or was closed): every later call fails. */
  get exited(): boolean {
    return this.exitedWith !== null;
  }

  call(request: Request, transfer: TransferListItem[] = []): Promise<Result> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.exitedWith !== null) return reject(this.exitedWith);
      if (this.pending.size === 0 && this.options.unrefWhenIdle === true) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private idle(): void {
    if (this.pending.size === 0 && this.options.unrefWhenIdle === true) this.worker.unref();
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
    this.idle();
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
