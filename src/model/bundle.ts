import { createHash } from "node:crypto";
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ChurnopsError } from "../errors.js";
import { graphFacts } from "./onnx-graph.js";
import { KEY_ENV, signatureMatches, signingKey } from "./signing.js";

/** The contract's smallest golden set (docs/bundle.md): fewer rows cannot cover missing values and edge cases. */
export const MIN_GOLDEN_ROWS = 200;
/** Files larger than these are refused before they are read: a churn bundle is a few megabytes. */
export const MAX_GRAPH_BYTES = 512 * 1024 * 1024;
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** bundle.json, as written by the trainer (docs/bundle.md). Unknown keys pass through untouched. */
// `input_name`: the feature's graph input (a valid ONNX name the converter derived from the column's name);
// bundles from before it existed name their inputs exactly like the columns.
const numericFeature = z.object({
  name: z.string().min(1),
  input_name: z.string().min(1).optional(),
  kind: z.literal("numeric"),
  integer: z.boolean().default(false),
  required: z.boolean(),
  min: z.number().nullable().optional(),
  max: z.number().nullable().optional(),
  lower_bound: z.number().nullable().optional(),
  upper_bound: z.number().nullable().optional(),
});
const categoricalFeature = z.object({
  name: z.string().min(1),
  input_name: z.string().min(1).optional(),
  kind: z.literal("categorical"),
  required: z.boolean(),
  categories: z.array(z.string()).min(1),
});
const featureSchema = z.discriminatedUnion("kind", [numericFeature, categoricalFeature]);

const profileSchema = z.union([
  z.object({
    kind: z.literal("numeric"),
    edges: z.array(z.number()),
    freqs: z.array(z.number()),
    missing_share: z.number(),
    mean: z.number().nullable().optional(),
    std: z.number().nullable().optional(),
  }),
  z.object({ kind: z.literal("categorical"), freqs: z.record(z.string(), z.number()), missing_share: z.number() }),
]);

const metricsBlock = z.record(z.string(), z.number().nullable());

/** One contribution column: a raw feature (a categorical's one-hot group), or a derived ratio with its definition. */
const explainedFeature = z
  .object({
    name: z.string().min(1),
    kind: z.enum(["numeric", "categorical", "derived"]),
    definition: z.string().optional(),
    /** Training 0th..100th percentiles (numeric and derived features), for reason texts. */
    percentiles: z.array(z.number()).optional(),
    /** A human label from the dataset spec (`label:`), used by reason texts instead of the column name. */
    label: z.string().optional(),
    /** Labels per language (`labels: {Contract: {en: …, ja: …}}` in the spec); `label` is the English one. */
    labels: z.record(z.string(), z.string()).optional(),
    /** A derived ratio's inputs: numerator / (denominator + offset), 0 where that denominator is 0. */
    ratio: z.object({ numerator: z.string(), denominator: z.string(), offset: z.number() }).optional(),
  })
  .passthrough();

/**
 * Per-row contributions to the calibrated log-odds (docs/bundle.md, "Explanations"). Bundles from before
 * them, and models that are not additive, say `available: false` (or lack the block): consumers score them
 * and say plainly that there are no reasons.
 */
const explanationsSchema = z.discriminatedUnion("available", [
  z
    .object({
      available: z.literal(true),
      output: z.string().min(1),
      scale: z.literal("log_odds"),
      baseline: z.number(),
      features: z.array(explainedFeature).min(1),
    })
    .passthrough(),
  z.object({ available: z.literal(false), reason: z.string().default("the bundle carries no contributions") }).passthrough(),
]);

export const bundleJsonSchema = z
  .object({
    format_version: z.literal(1),
    model_name: z.string().min(1),
    model_version: z.string().min(1),
    run_id: z.string().nullable().optional(),
    created_at: z.string(),
    onnx: z.object({
      file: z.string().min(1),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      opset: z.number().int().optional(),
      probability_output: z.string().default("probabilities"),
      positive_index: z.number().int().min(0).default(1),
    }),
    schema: z.object({
      id_column: z.string().nullable(),
      target: z.object({ column: z.string(), positive: z.union([z.string(), z.number(), z.boolean()]) }),
      missing_token: z.string().default("__missing__"),
      features: z.array(featureSchema).min(1),
      derived: z.array(z.object({ name: z.string(), definition: z.string() }).passthrough()).default([]),
      transformed_feature_names: z.array(z.string()).default([]),
    }),
    thresholds: z
      .object({
        operating: z.number().gt(0).lt(1),
        recall_target: z.number().nullable().optional(),
        accuracy_optimal: z.number().nullable().optional(),
        cost_based: z.number().nullable().optional(),
      })
      .passthrough(),
    bands: z.array(z.object({ name: z.string().min(1), min: z.number().min(0).max(1) })).min(1),
    metrics: z.object({ test: metricsBlock.optional(), cv: metricsBlock.optional() }).passthrough().default({}),
    reference: z
      .object({
        n_rows: z.number().int().optional(),
        features: z.record(z.string(), profileSchema),
        score: z.object({ edges: z.array(z.number()), freqs: z.array(z.number()) }),
      })
      .passthrough(),
    golden: z.object({
      rows: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.null()]))).min(1),
      probabilities: z.array(z.number()).min(1),
      contributions: z.array(z.array(z.number())).optional(),
    }),
    explanations: explanationsSchema.default({ available: false, reason: "the bundle predates contributions" }),
    versions: z.record(z.string(), z.string()).default({}),
  })
  .passthrough();

export type BundleJson = z.infer<typeof bundleJsonSchema>;
export type FeatureSpec = z.infer<typeof featureSchema>;
export type NumericFeatureSpec = z.infer<typeof numericFeature>;
export type CategoricalFeatureSpec = z.infer<typeof categoricalFeature>;
export type FeatureProfile = z.infer<typeof profileSchema>;
export type Band = BundleJson["bands"][number];
export type Explanations = BundleJson["explanations"];
export type ExplainedFeature = z.infer<typeof explainedFeature>;

export interface BundleFiles {
  dir: string;
  json: BundleJson;
  onnx: Uint8Array;
  /** sha256 over the sha256 digests of bundle.json and the graph file (docs/bundle.md, "Integrity"). */
  digest: string;
}

/** What the registry recorded for a version when it was published; null fields for versions from before. */
export interface RegisteredDigest {
  digest: string | null;
  signature: string | null;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function bundleDigest(json: Uint8Array, onnx: Uint8Array): string {
  const part = (bytes: Uint8Array): Buffer => createHash("sha256").update(bytes).digest();
  return createHash("sha256").update(part(json)).update(part(onnx)).digest("hex");
}

function invalid(where: string, reason: string): ChurnopsError {
  return new ChurnopsError("bundle_invalid", `bundle ${where}: ${reason}`);
}

/** Read a file of the bundle that must be a regular file (not a directory, device or link) of bounded size. */
async function readBundleFile(dir: string, name: string, maxBytes: number): Promise<Uint8Array> {
  const path = join(dir, name);
  const stat = await lstat(path).catch(() => null);
  if (stat === null) throw invalid(dir, `${name} is missing`);
  if (!stat.isFile()) throw invalid(dir, `${name} is not a regular file`);
  if (stat.size > maxBytes) throw invalid(dir, `${name} is ${stat.size} bytes, more than the ${maxBytes} a bundle may hold`);
  return new Uint8Array(await readFile(path));
}

/** onnx.file names a file directly inside the bundle folder: no path, no parent, nothing absolute. */
function checkGraphFileName(dir: string, name: string): void {
  if (name === "." || name === ".." || /[/\\\0]/.test(name)) {
    throw invalid(dir, `onnx.file must name a file inside the bundle folder, got ${JSON.stringify(name)}`);
  }
}

/** The rules bundle.json must obey on its own (docs/bundle.md), beyond its JSON shape. */
function checkDocument(dir: string, json: BundleJson): void {
  if (json.golden.rows.length < MIN_GOLDEN_ROWS) {
    throw invalid(dir, `golden has ${json.golden.rows.length} rows; the contract asks for at least ${MIN_GOLDEN_ROWS}`);
  }
  if (json.golden.rows.length !== json.golden.probabilities.length) {
    throw invalid(dir, `golden has ${json.golden.rows.length} rows but ${json.golden.probabilities.length} probabilities`);
  }
  const bandNames = new Set(json.bands.map((b) => b.name));
  if (bandNames.size !== json.bands.length) throw invalid(dir, `band names must be unique, got ${json.bands.map((b) => b.name).join(", ")}`);
  for (let i = 1; i < json.bands.length; i++) {
    if ((json.bands[i]?.min ?? 0) >= (json.bands[i - 1]?.min ?? 0)) throw invalid(dir, "bands must be ordered from highest min to lowest");
  }
  const seen = new Set<string>();
  for (const feature of json.schema.features) {
    if (seen.has(feature.name)) throw invalid(dir, `feature ${feature.name} is listed twice`);
    seen.add(feature.name);
  }
  const explanations = json.explanations;
  if (explanations.available) {
    const width = explanations.features.length;
    if (new Set(explanations.features.map((f) => f.name)).size !== width) throw invalid(dir, "explanations.features names a feature twice");
    const golden = json.golden.contributions ?? [];
    if (golden.length !== json.golden.rows.length || golden.some((row) => row.length !== width)) {
      throw invalid(dir, `golden.contributions must hold ${width} values for each of the ${json.golden.rows.length} golden rows`);
    }
  }
}

/** bundle.json against the graph it describes: the same inputs with the right types, the output, the categories. */
function checkAgainstGraph(dir: string, json: BundleJson, onnx: Uint8Array): void {
  const graph = graphFacts(onnx, dir);
  // A feature reaches the graph under its input_name (the column's name made a valid ONNX name), else its name.
  // (graph.ts's inputNameOf says the same, but importing it would load ONNX Runtime wherever a bundle is read.)
  const inputOf = (f: { name: string; input_name?: string | undefined }): string => f.input_name ?? f.name;
  const names = new Set(json.schema.features.map(inputOf));
  const missing = [...names].filter((n) => !graph.inputs.has(n));
  const extra = [...graph.inputs.keys()].filter((n) => !names.has(n));
  if (missing.length > 0) throw invalid(dir, `the graph has no input for feature(s) ${missing.join(", ")}`);
  if (extra.length > 0) throw invalid(dir, `the graph takes input(s) ${extra.join(", ")} that bundle.json does not list`);
  for (const feature of json.schema.features) {
    const input = inputOf(feature);
    const expected = feature.kind === "numeric" ? "float" : "string";
    const actual = graph.inputs.get(input);
    if (actual !== expected) throw invalid(dir, `feature ${feature.name} is ${feature.kind} in bundle.json but the graph takes a ${actual} tensor`);
    if (feature.kind !== "categorical") continue;
    const known = graph.categories.get(input);
    if (known === undefined) throw invalid(dir, `the graph does not say which categories of ${feature.name} it knows`);
    const unknown = feature.categories.filter((c) => !known.has(c));
    if (unknown.length > 0) throw invalid(dir, `categories of ${feature.name} that the graph never saw: ${unknown.join(", ")}`);
  }
  const probability = graph.outputs.get(json.onnx.probability_output);
  if (probability !== "float" && probability !== "double") {
    throw invalid(dir, `the graph has no float output named ${json.onnx.probability_output}`);
  }
  if (json.explanations.available && graph.outputs.get(json.explanations.output) !== "double") {
    throw invalid(dir, `the graph has no double output named ${json.explanations.output} for the contributions`);
  }
}

/** The registered digest must match, and with a signing key configured, its signature too. */
function checkRegistered(dir: string, digest: string, registered: RegisteredDigest): void {
  const key = signingKey();
  if (registered.digest === null) {
    if (key !== null) throw invalid(dir, `the registry holds no digest for it, and ${KEY_ENV} requires a signed one`);
    return;
  }
  if (digest !== registered.digest) {
    throw invalid(dir, `its files have digest ${digest} but the registry recorded ${registered.digest}; refusing a modified bundle`);
  }
  if (key !== null && !signatureMatches(key, registered.digest, registered.signature)) {
    throw invalid(dir, `its registered digest is not signed with the key in ${KEY_ENV}`);
  }
}

/**
 * Read a bundle directory and check everything that needs no session: the JSON's shape and rules, the graph
 * file's name, sha256 and agreement with bundle.json, and (for a registered version) the digest and signature
 * recorded at registration. Any failure is `bundle_invalid`. The golden-vector check lives in runtime.ts.
 */
export async function readBundle(dir: string, registered?: RegisteredDigest): Promise<BundleFiles> {
  const jsonPath = join(dir, "bundle.json");
  if ((await lstat(jsonPath).catch(() => null)) === null) {
    throw new ChurnopsError("bundle_not_found", `no model bundle at ${dir} (expected ${jsonPath})`);
  }
  const jsonBytes = await readBundleFile(dir, "bundle.json", MAX_JSON_BYTES);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(jsonBytes));
  } catch (err) {
    throw invalid(dir, `bundle.json is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = bundleJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(dir, `bundle.json field ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const json = parsed.data;
  checkDocument(dir, json);
  checkGraphFileName(dir, json.onnx.file);
  const onnx = await readBundleFile(dir, json.onnx.file, MAX_GRAPH_BYTES);
  const actual = sha256Hex(onnx);
  if (actual !== json.onnx.sha256) {
    throw invalid(dir, `${json.onnx.file} has sha256 ${actual} but bundle.json says ${json.onnx.sha256}; refusing a modified model`);
  }
  const digest = bundleDigest(jsonBytes, onnx);
  if (registered !== undefined) checkRegistered(dir, digest, registered);
  checkAgainstGraph(dir, json, onnx);
  return { dir, json, onnx, digest };
}

/** The band a probability falls in: the first (highest) band whose `min` it reaches. */
export function bandOf(bands: readonly Band[], probability: number): string {
  for (const band of bands) if (probability >= band.min) return band.name;
  return bands[bands.length - 1]?.name ?? "low";
}
