import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { FeatureBatch, FeatureColumn } from "./features.js";
import { type GraphSpec, runGraph, sessionOptions } from "./graph.js";

/**
 * A worker thread that owns one ONNX session. onnxruntime-node runs inference synchronously on the calling
 * thread, so batch scoring moves it here: the main thread reads, validates and writes the next and previous
 * chunks while this thread scores the current one.
 */
export interface WorkerInit {
  onnx: Uint8Array;
  spec: GraphSpec;
  intraOpThreads: number | undefined;
}

export interface WorkerRequest {
  id: number;
  size: number;
  columns: [string, FeatureColumn][];
}

export type WorkerReply = { id: number; probabilities: Float32Array } | { id: number; error: string } | { ready: true } | { failed: string };

const port = parentPort;
if (port === null) throw new Error("inference-worker.ts must run in a worker thread");
const init = workerData as WorkerInit;
ort.InferenceSession.create(init.onnx, sessionOptions(init.intraOpThreads)).then(
  (session) => {
    port.on("message", (req: WorkerRequest) => {
      const batch: FeatureBatch = { size: req.size, columns: new Map(req.columns) };
      runGraph(session, init.spec, batch).then(
        (probabilities) => port.postMessage({ id: req.id, probabilities } satisfies WorkerReply, [probabilities.buffer as ArrayBuffer]),
        (err: unknown) => port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
      );
    });
    port.postMessage({ ready: true } satisfies WorkerReply);
  },
  (err: unknown) => port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
);
