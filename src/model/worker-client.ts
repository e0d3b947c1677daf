import { startCallWorker, type WorkerCalls } from "../worker.js";
import type { BundleJson } from "./bundle.js";
import type { FeatureBatch } from "./features.js";
import type { Explained, GraphSpec } from "./graph.js";
import type { Reasoned, ReasonsRequest, WorkerInit, WorkerRequest, WorkerResult } from "./inference-worker.js";

/** The main-thread side of an inference worker: predict() posts a batch and resolves with its probabilities. */
export class InferenceWorker {
  private constructor(private readonly calls: WorkerCalls<WorkerRequest, WorkerResult>) {}

  static async start(onnx: Uint8Array, spec: GraphSpec, intraOpThreads: number | undefined, bundle: BundleJson | null): Promise<InferenceWorker> {
    const init: WorkerInit = { onnx, spec, intraOpThreads, bundle };
    return new InferenceWorker(await startCallWorker(import.meta.url, "inference-worker", init, "inference worker"));
  }

  async predict(batch: FeatureBatch): Promise<Float32Array> {
    if (batch.size === 0) return new Float32Array(0);
    return (await this.post(batch, false)) as Float32Array;
  }

  async explain(batch: FeatureBatch): Promise<Explained> {
    return (await this.post(batch, true)) as Explained;
  }

  /** Probabilities and each row's reasons, built in the worker (batch-reasons.ts). */
  async reasons(batch: FeatureBatch, reasons: ReasonsRequest): Promise<Reasoned> {
    return (await this.post(batch, false, reasons)) as Reasoned;
  }

  private post(batch: FeatureBatch, explain: boolean, reasons?: ReasonsRequest): Promise<WorkerResult> {
    const columns = [...batch.columns.entries()];
    // Typed arrays move to the worker without a copy; only string columns (the API's) are cloned.
    const transfer = columns.flatMap(([, c]) =>
      c instanceof Float32Array ? [c.buffer as ArrayBuffer] : Array.isArray(c) ? [] : [c.codes.buffer as ArrayBuffer],
    );
    return this.calls.call({ size: batch.size, columns, explain, reasons }, transfer);
  }

  close(): Promise<void> {
    return this.calls.close();
  }
}
