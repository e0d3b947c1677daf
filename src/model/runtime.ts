import * as ort from "onnxruntime-node";
import { ChurnopsError } from "../errors.js";
import { type BatchReasons, BatchReasonWriter } from "./batch-reasons.js";
import { type BundleJson, bandOf, type RegisteredDigest, readBundle } from "./bundle.js";
import { batchFromRows, type FeatureBatch } from "./features.js";
import { type Explained, graphSpecOf, runExplained, runGraph, sessionOptions } from "./graph.js";
import type { Language } from "./reasons.js";
import { InferenceWorker } from "./worker-client.js";

/** Distinguishes one batch run's reasons from another's in a shared inference worker. */
let runs = 0;

/** Largest difference from a golden probability (or contribution) a consumer accepts (docs/bundle.md). */
export const GOLDEN_TOLERANCE = 1e-6;
/** Largest |baseline + Σ contributions − logit(p)| a bundle may show on a golden row (docs/bundle.md). */
export const IDENTITY_TOLERANCE = 1e-5;

export interface RuntimeOptions {
  /** Threads ONNX Runtime may use inside one call; default lets it choose. */
  intraOpThreads?: number;
  /**
   * Score in a worker thread (batch scoring): onnxruntime-node blocks the calling thread for the whole call, so
   * a worker lets reading, validating and writing overlap with inference. The API keeps inference in-thread.
   * `"on-demand"`: in-thread until `startWorker()` is called — batch scoring calls it once it knows the input is
   * more than one chunk, since a thread (its start-up, a second session) only costs on a one-chunk input.
   */
  inferenceWorker?: boolean | "on-demand";
  /** What the registry recorded for this version; a bundle resolved from the registry must match it. */
  registered?: RegisteredDigest;
}

export interface GoldenCheck {
  rows: number;
  maxAbsDiff: number;
}

/** A verified model: a bundle whose sha256 and golden vectors matched, with its ONNX session. */
export class ChurnModel {
  private constructor(
    readonly dir: string,
    readonly bundle: BundleJson,
    private readonly session: ort.InferenceSession,
    readonly golden: GoldenCheck,
    private worker: InferenceWorker | null,
    /** What an on-demand worker is started from; null once started, or when the model has no worker. */
    private workerStart: (() => Promise<InferenceWorker>) | null,
  ) {}

  get name(): string {
    return this.bundle.model_name;
  }

  get version(): string {
    return this.bundle.model_version;
  }

  get threshold(): number {
    return this.bundle.thresholds.operating;
  }

  /** Load a bundle directory and refuse it unless readBundle's checks and every golden vector check out. */
  static async load(dir: string, options: RuntimeOptions = {}): Promise<ChurnModel> {
    const files = await readBundle(dir, options.registered);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(files.onnx, sessionOptions(options.intraOpThreads));
    } catch (err) {
      throw new ChurnopsError("bundle_invalid", `bundle ${dir}: ONNX Runtime cannot load the graph: ${(err as Error).message}`);
    }
    const golden = await checkGolden(session, files.json, dir);
    // The worker's session is built from the very bytes whose sha256 and golden vectors were just checked.
    const start = () =>
      InferenceWorker.start(files.onnx, graphSpecOf(files.json), options.intraOpThreads, files.json.explanations.available ? files.json : null);
    const worker = options.inferenceWorker === true ? await start() : null;
    return new ChurnModel(dir, files.json, session, golden, worker, options.inferenceWorker === "on-demand" ? start : null);
  }

  /** Move inference to the worker thread of an `"on-demand"` model (no-op otherwise, or when already started). */
  async startWorker(): Promise<void> {
    const start = this.workerStart;
    if (start === null) return;
    this.workerStart = null;
    this.worker = await start();
  }

  /** Churn probability for every row of the batch, in one ONNX call. */
  async predict(batch: FeatureBatch): Promise<Float32Array> {
    return this.worker === null ? runGraph(this.session, graphSpecOf(this.bundle), batch) : this.worker.predict(batch);
  }

  /** Whether the bundle carries contributions; when not, `explanationsUnavailable` says why. */
  get explains(): boolean {
    return this.bundle.explanations.available;
  }

  get explanationsUnavailable(): string | null {
    const e = this.bundle.explanations;
    return e.available ? null : e.reason;
  }

  /** Probabilities and per-feature contributions for every row, in one ONNX call (only if `explains`). */
  async explain(batch: FeatureBatch): Promise<Explained> {
    if (!this.explains) {
      throw new ChurnopsError("bundle_invalid", `model ${this.name} v${this.version} has no contributions: ${this.explanationsUnavailable}`);
    }
    return this.worker === null ? runExplained(this.session, graphSpecOf(this.bundle), batch) : this.worker.explain(batch);
  }

  /**
   * A batch run's reasons: `reasons(batch)` scores the batch and gives each row's top-n reasons, with sentence
   * codes numbered across the run's batches. Built where the contributions are (the inference worker, when
   * the model has one), so only the reasons come back (only if `explains`).
   */
  reasonRun(n: number, language: Language, json: boolean): (batch: FeatureBatch) => Promise<{ probabilities: Float32Array; reasons: BatchReasons }> {
    if (!this.explains) {
      throw new ChurnopsError("bundle_invalid", `model ${this.name} v${this.version} has no contributions: ${this.explanationsUnavailable}`);
    }
    const run = ++runs;
    let local: BatchReasonWriter | null = null;
    return async (batch) => {
      if (this.worker !== null) return this.worker.reasons(batch, { n, language, json, run });
      local ??= new BatchReasonWriter(this.bundle, language);
      const explained = await runExplained(this.session, graphSpecOf(this.bundle), batch);
      return { probabilities: explained.probabilities, reasons: local.reasons(batch, explained.contributions, n, json) };
    };
  }

  band(probability: number): string {
    return bandOf(this.bundle.bands, probability);
  }

  decide(probability: number): boolean {
    return probability >= this.bundle.thresholds.operating;
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.session.release();
  }
}

async function checkGolden(session: ort.InferenceSession, bundle: BundleJson, dir: string): Promise<GoldenCheck> {
  const batch = batchFromRows(bundle, bundle.golden.rows);
  const got = await runGraph(session, graphSpecOf(bundle), batch);
  let maxAbsDiff = 0;
  for (let i = 0; i < got.length; i++) {
    const expected = bundle.golden.probabilities[i] ?? Number.NaN;
    const diff = Math.abs((got[i] ?? Number.NaN) - expected);
    if (!(diff <= GOLDEN_TOLERANCE)) {
      throw new ChurnopsError(
        "bundle_invalid",
        `bundle ${dir}: golden row ${i} scores ${got[i]} here but ${expected} in the trainer (difference ${diff} > ${GOLDEN_TOLERANCE}); refusing the bundle`,
      );
    }
    if (diff > maxAbsDiff) maxAbsDiff = diff;
  }
  if (bundle.explanations.available) checkGoldenContributions(await runExplained(session, graphSpecOf(bundle), batch), bundle, dir);
  return { rows: got.length, maxAbsDiff };
}

/** The golden contributions to 1e-6, and baseline + Σ contributions = logit(p) to 1e-5, on every golden row. */
function checkGoldenContributions(got: Explained, bundle: BundleJson, dir: string): void {
  if (!bundle.explanations.available) return;
  const { baseline, features } = bundle.explanations;
  const expected = bundle.golden.contributions ?? [];
  for (let i = 0; i < got.exact.length; i++) {
    let sum = baseline;
    for (let j = 0; j < got.width; j++) {
      const value = got.contributions[i * got.width + j] ?? Number.NaN;
      const diff = Math.abs(value - (expected[i]?.[j] ?? Number.NaN));
      if (!(diff <= GOLDEN_TOLERANCE)) {
        throw new ChurnopsError(
          "bundle_invalid",
          `bundle ${dir}: golden row ${i}'s contribution of ${features[j]?.name} is ${value} here but ${expected[i]?.[j]} in the trainer (difference ${diff} > ${GOLDEN_TOLERANCE}); refusing the bundle`,
        );
      }
      sum += value;
    }
    const p = got.exact[i] ?? Number.NaN;
    const gap = Math.abs(sum - Math.log(p / (1 - p)));
    if (!(gap <= IDENTITY_TOLERANCE)) {
      throw new ChurnopsError(
        "bundle_invalid",
        `bundle ${dir}: on golden row ${i} baseline + contributions = ${sum} but logit(p) = ${Math.log(p / (1 - p))} (gap ${gap} > ${IDENTITY_TOLERANCE}); refusing the bundle`,
      );
    }
  }
}
