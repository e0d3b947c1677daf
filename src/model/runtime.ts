import * as ort from "onnxruntime-node";
import { ChurnopsError } from "../errors.js";
import { type BundleJson, bandOf, readBundle } from "./bundle.js";
import { batchFromRows, type FeatureBatch } from "./features.js";

/** Largest difference from a golden probability a consumer accepts (docs/bundle.md). */
export const GOLDEN_TOLERANCE = 1e-6;

export interface RuntimeOptions {
  /** Threads ONNX Runtime may use inside one call; default lets it choose. */
  intraOpThreads?: number;
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

  /** Load a bundle directory and refuse it unless sha256 and every golden vector check out. */
  static async load(dir: string, options: RuntimeOptions = {}): Promise<ChurnModel> {
    const files = await readBundle(dir);
    const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
    if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads;
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(files.onnx, sessionOptions);
    } catch (err) {
      throw new ChurnopsError("bundle_invalid", `bundle ${dir}: ONNX Runtime cannot load the graph: ${(err as Error).message}`);
    }
    const missingInputs = files.json.schema.features.map((f) => f.name).filter((n) => !session.inputNames.includes(n));
    if (missingInputs.length > 0) {
      throw new ChurnopsError("bundle_invalid", `bundle ${dir}: the graph has no input for feature(s) ${missingInputs.join(", ")}`);
    }
    if (!session.outputNames.includes(files.json.onnx.probability_output)) {
      throw new ChurnopsError("bundle_invalid", `bundle ${dir}: the graph has no output named ${files.json.onnx.probability_output}`);
    }
    const golden = await checkGolden(session, files.json, dir);
    return new ChurnModel(dir, files.json, session, golden);
  }

  /** Churn probability for every row of the batch, in one ONNX call. */
  async predict(batch: FeatureBatch): Promise<Float32Array> {
    return runGraph(this.session, this.bundle, batch);
  }

  band(probability: number): string {
    return bandOf(this.bundle.bands, probability);
  }

  decide(probability: number): boolean {
    return probability >= this.bundle.thresholds.operating;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

async function runGraph(session: ort.InferenceSession, bundle: BundleJson, batch: FeatureBatch): Promise<Float32Array> {
  if (batch.size === 0) return new Float32Array(0);
  const feeds: Record<string, ort.Tensor> = {};
  for (const feature of bundle.schema.features) {
    const column = batch.columns.get(feature.name);
    if (column === undefined) throw new Error(`feature batch lacks column ${feature.name}`);
    feeds[feature.name] =
      feature.kind === "numeric"
        ? new ort.Tensor("float32", column as Float32Array, [batch.size, 1])
        : new ort.Tensor("string", column as string[], [batch.size, 1]);
  }
  const outputName = bundle.onnx.probability_output;
  const result = await session.run(feeds, [outputName]);
  const output = result[outputName];
  if (output === undefined) throw new Error(`graph returned no ${outputName}`);
  const data = output.data as Float32Array;
  const width = output.dims.length === 2 ? Number(output.dims[1]) : 1;
  const probabilities = new Float32Array(batch.size);
  const column = bundle.onnx.positive_index;
  for (let i = 0; i < batch.size; i++) probabilities[i] = data[i * width + (width === 1 ? 0 : column)] ?? Number.NaN;
  return probabilities;
}

async function checkGolden(session: ort.InferenceSession, bundle: BundleJson, dir: string): Promise<GoldenCheck> {
  const batch = batchFromRows(bundle, bundle.golden.rows);
  const got = await runGraph(session, bundle, batch);
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
  return { rows: got.length, maxAbsDiff };
}
