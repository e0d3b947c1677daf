import * as ort from "onnxruntime-node";
import type { BundleJson } from "./bundle.js";
import { type CategoryCodes, categoryStrings, type FeatureBatch } from "./features.js";

/** What running the graph needs from bundle.json: small enough to send to a worker thread. */
export interface GraphSpec {
  /** `name` keys the batch's columns; `inputName` is the graph input it feeds. */
  features: { name: string; inputName: string; kind: "numeric" | "categorical" }[];
  probabilityOutput: string;
  positiveIndex: number;
  /** The contributions output (docs/bundle.md, "Explanations"), null for a bundle without contributions. */
  contributionOutput: string | null;
  contributionWidth: number;
}

/** What one explained call returns: the probabilities as runGraph gives them, plus the contributions. */
export interface Explained {
  probabilities: Float32Array;
  /** The same probabilities in the graph's double precision (the identity baseline + Σ = logit(p) uses them). */
  exact: Float64Array;
  /** Row-major [rows × width] contributions to the log-odds, in the bundle's explanations.features order. */
  contributions: Float64Array;
  width: number;
}

export function graphSpecOf(bundle: BundleJson): GraphSpec {
  return {
    features: bundle.schema.features.map((f) => ({ name: f.name, inputName: inputNameOf(f), kind: f.kind })),
    probabilityOutput: bundle.onnx.probability_output,
    positiveIndex: bundle.onnx.positive_index,
    contributionOutput: bundle.explanations.available ? bundle.explanations.output : null,
    contributionWidth: bundle.explanations.available ? bundle.explanations.features.length : 0,
  };
}

/** The graph input a feature feeds (docs/bundle.md: `input_name`, defaulting to the column's name). */
export function inputNameOf(feature: { name: string; input_name?: string | undefined }): string {
  return feature.input_name ?? feature.name;
}

export function sessionOptions(intraOpThreads: number | undefined): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
  if (intraOpThreads !== undefined) options.intraOpNumThreads = intraOpThreads;
  // Idle ONNX Runtime pool threads otherwise spin between calls, burning the core that reading, validating
  // and writing need (measured: 2.76 vs 2.50 µs of CPU per row at 2 threads, same wall time).
  if (intraOpThreads !== 1) options.extra = { session: { intra_op: { allow_spinning: "0" } } };
  return options;
}

/** One ONNX call for the whole batch: feature columns in (graph-input form), positive-class probabilities out. */
export async function runGraph(session: ort.InferenceSession, spec: GraphSpec, batch: FeatureBatch): Promise<Float32Array> {
  if (batch.size === 0) return new Float32Array(0);
  const result = await session.run(feedsOf(spec, batch), [spec.probabilityOutput]);
  return positiveColumn(result, spec, batch.size).probabilities;
}

/** Probabilities and contributions in one ONNX call (the graph computes both from the same trees). */
export async function runExplained(session: ort.InferenceSession, spec: GraphSpec, batch: FeatureBatch): Promise<Explained> {
  const output = spec.contributionOutput;
  if (output === null) throw new Error("runExplained on a bundle without contributions");
  if (batch.size === 0)
    return { probabilities: new Float32Array(0), exact: new Float64Array(0), contributions: new Float64Array(0), width: spec.contributionWidth };
  const result = await session.run(feedsOf(spec, batch), [spec.probabilityOutput, output]);
  const tensor = result[output];
  if (tensor === undefined) throw new Error(`graph returned no ${output}`);
  const contributions = tensor.data as Float64Array;
  const width = Number(tensor.dims[1] ?? 0);
  if (width !== spec.contributionWidth || contributions.length !== width * batch.size) {
    throw new Error(`graph returned ${width} contributions per row, bundle.json names ${spec.contributionWidth}`);
  }
  return { ...positiveColumn(result, spec, batch.size), contributions, width };
}

function feedsOf(spec: GraphSpec, batch: FeatureBatch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const feature of spec.features) {
    const column = batch.columns.get(feature.name);
    if (column === undefined) throw new Error(`feature batch lacks column ${feature.name}`);
    feeds[feature.inputName] =
      feature.kind === "numeric"
        ? new ort.Tensor("float32", column as Float32Array, [batch.size, 1])
        : new ort.Tensor("string", categoryStrings(column as string[] | CategoryCodes), [batch.size, 1]);
  }
  return feeds;
}

/** The positive-class column of the probability output (float32 or, in heads with contributions, double). */
function positiveColumn(result: ort.InferenceSession.OnnxValueMapType, spec: GraphSpec, size: number): { probabilities: Float32Array; exact: Float64Array } {
  const output = result[spec.probabilityOutput];
  if (output === undefined) throw new Error(`graph returned no ${spec.probabilityOutput}`);
  const data = output.data as Float32Array | Float64Array;
  const width = output.dims.length === 2 ? Number(output.dims[1]) : 1;
  const exact = new Float64Array(size);
  const column = width === 1 ? 0 : spec.positiveIndex;
  for (let i = 0; i < size; i++) exact[i] = data[i * width + column] ?? Number.NaN;
  // Scores are float32 everywhere (store, files, Spark): the same rounding of the same double in every consumer.
  return { probabilities: Float32Array.from(exact), exact };
}
