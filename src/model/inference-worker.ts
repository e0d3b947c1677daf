import { workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { answerCalls } from "../worker.js";
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
  size: number;
  columns: [string, FeatureColumn][];
}

const init = workerData as WorkerInit;
answerCalls<WorkerRequest, Float32Array>(
  "inference-worker.ts",
  async () => {
    const session = await ort.InferenceSession.create(init.onnx, sessionOptions(init.intraOpThreads));
    return (req) => runGraph(session, init.spec, { size: req.size, columns: new Map(req.columns) } satisfies FeatureBatch);
  },
  // The probabilities move back without a copy.
  (probabilities) => [probabilities.buffer as ArrayBuffer],
);
