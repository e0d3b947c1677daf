import { workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { answerCalls } from "../worker.js";
import { type BatchReasons, BatchReasonWriter } from "./batch-reasons.js";
import type { BundleJson } from "./bundle.js";
import type { FeatureBatch, FeatureColumn } from "./features.js";
import { type Explained, type GraphSpec, runExplained, runGraph, sessionOptions } from "./graph.js";
import type { Language } from "./reasons.js";

/**
 * A worker thread that owns one ONNX session. onnxruntime-node runs inference synchronously on the calling
 * thread, so batch scoring moves it here: the main thread reads, validates and writes the next and previous
 * chunks while this thread scores the current one.
 */
export interface WorkerInit {
  onnx: Uint8Array;
  spec: GraphSpec;
  intraOpThreads: number | undefined;
  /** For batch reasons (bundles with contributions): the texts' labels and reference profile. */
  bundle: BundleJson | null;
}

/** `score --reasons N`: the worker turns the contributions into reasons itself (see batch-reasons.ts). */
export interface ReasonsRequest {
  n: number;
  language: Language;
  /** Also the JSON the store keeps. */
  json: boolean;
  /** One batch run: its sentence codes are numbered from 0 across all its chunks. */
  run: number;
}

export interface WorkerRequest {
  size: number;
  columns: [string, FeatureColumn][];
  /** Also return the contributions (only for a bundle that has them). */
  explain: boolean;
  reasons?: ReasonsRequest | undefined;
}

export interface Reasoned {
  probabilities: Float32Array;
  reasons: BatchReasons;
}

export type WorkerResult = Float32Array | Explained | Reasoned;

const init = workerData as WorkerInit;
/** The reason writer of the run being scored (a new run starts its sentence codes afresh). */
let current: { run: number; writer: BatchReasonWriter } | null = null;

function reasonWriter(req: ReasonsRequest): BatchReasonWriter {
  if (current === null || current.run !== req.run) {
    if (init.bundle === null) throw new Error("reasons asked of an inference worker started without its bundle");
    current = { run: req.run, writer: new BatchReasonWriter(init.bundle, req.language) };
  }
  return current.writer;
}

answerCalls<WorkerRequest, WorkerResult>(
  "inference-worker.ts",
  async () => {
    const session = await ort.InferenceSession.create(init.onnx, sessionOptions(init.intraOpThreads));
    return async (req) => {
      const batch: FeatureBatch = { size: req.size, columns: new Map(req.columns) };
      const wanted = req.reasons;
      if (wanted !== undefined) {
        const explained = await runExplained(session, init.spec, batch);
        return { probabilities: explained.probabilities, reasons: reasonWriter(wanted).reasons(batch, explained.contributions, wanted.n, wanted.json) };
      }
      return req.explain ? runExplained(session, init.spec, batch) : runGraph(session, init.spec, batch);
    };
  },
  // The results move back without a copy.
  (result) =>
    result instanceof Float32Array
      ? [result.buffer as ArrayBuffer]
      : "reasons" in result
        ? [result.probabilities.buffer as ArrayBuffer, result.reasons.featureCodes.buffer as ArrayBuffer, result.reasons.textCodes.buffer as ArrayBuffer]
        : [result.probabilities.buffer as ArrayBuffer, result.exact.buffer as ArrayBuffer, result.contributions.buffer as ArrayBuffer],
);
