import type { Worker } from "node:worker_threads";
import { moduleWorker } from "../worker.js";
import type { FeatureBatch } from "./features.js";
import type { GraphSpec } from "./graph.js";
import type { WorkerInit, WorkerReply, WorkerRequest } from "./inference-worker.js";

/** The main-thread side of an inference worker: predict() posts a batch and resolves with its probabilities. */
export class InferenceWorker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (p: Float32Array) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: WorkerReply) => {
      if (!("id" in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ("error" in reply) waiter?.reject(new Error(reply.error));
      else waiter?.resolve(reply.probabilities);
    });
    worker.on("error", (err) => this.failAll(err));
    worker.on("exit", (code) => this.failAll(new Error(`inference worker exited with code ${code}`)));
  }

  static async start(onnx: Uint8Array, spec: GraphSpec, intraOpThreads: number | undefined): Promise<InferenceWorker> {
    const init: WorkerInit = { onnx, spec, intraOpThreads };
    const worker = moduleWorker(import.meta.url, "inference-worker", init);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: WorkerReply): void => {
        if ("ready" in reply) resolve();
        else if ("failed" in reply) reject(new Error(`inference worker cannot load the graph: ${reply.failed}`));
        else return;
        worker.off("message", onMessage);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
    return new InferenceWorker(worker);
  }

  predict(batch: FeatureBatch): Promise<Float32Array> {
    if (batch.size === 0) return Promise.resolve(new Float32Array(0));
    const id = this.nextId++;
    const columns = [...batch.columns.entries()];
    // Typed arrays move to the worker without a copy; only string columns (the API's) are cloned.
    const transfer = columns.flatMap(([, c]) =>
      c instanceof Float32Array ? [c.buffer as ArrayBuffer] : Array.isArray(c) ? [] : [c.codes.buffer as ArrayBuffer],
    );
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, size: batch.size, columns } satisfies WorkerRequest, transfer);
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
