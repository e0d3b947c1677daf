import { workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { answerCalls } from "../worker.js";
import type { FeatureBatch, FeatureColumn } from "./features.js";
import { type Explained, type GraphSpec, runExplained, runGraph, sessionOptions } from "./graph.js";

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
  /** Also return the contributions (only for a bundle that has them). */
  explain: boolean;
}

export type WorkerResult = Float32Array | Explained;

const init = workerData as WorkerInit;
answerCalls<WorkerRequest, WorkerResult>(
  "inference-worker.ts",
  async () => {
    const session = await ort.InferenceSession.create(init.onnx, sessionOptions(init.intraOpThreads));
    return (req) => {
      const batch: FeatureBatch = { size: req.size, columns: new Map(req.columns) };
      return req.explain ? runExplained(session, init.spec, batch) : runGraph(session, init.spec, batch);
    };
  },
  // The results move back without a copy.
  (result) =>
    result instanceof Float32Array
      ? [result.buffer as ArrayBuffer]
      : [result.probabilities.buffer as ArrayBuffer, result.exact.buffer as ArrayBuffer, result.contributions.buffer as ArrayBuffer],
);
