import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ChurnopsError } from "../errors.js";

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
        operating: z.number().min(0).max(1),
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
    }),
    versions: z.record(z.string(), z.string()).default({}),
  })
  .passthrough();

export type BundleJson = z.infer<typeof bundleJsonSchema>;
export type FeatureSpec = z.infer<typeof featureSchema>;
export type NumericFeatureSpec = z.infer<typeof numericFeature>;
export type CategoricalFeatureSpec = z.infer<typeof categoricalFeature>;
export type FeatureProfile = z.infer<typeof profileSchema>;
export type Band = BundleJson["bands"][number];

export interface BundleFiles {
  dir: string;
  json: BundleJson;
  onnx: Uint8Array;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Read a bundle directory and check what can be checked without running the graph: the JSON's shape,
 * internal consistency (bands ordered, golden counts) and the ONNX file's sha256.
 * The golden-vector check needs a session and lives in runtime.ts.
 */
export async function readBundle(dir: string): Promise<BundleFiles> {
  const jsonPath = join(dir, "bundle.json");
  if (!existsSync(jsonPath)) {
    throw new ChurnopsError("bundle_not_found", `no model bundle at ${dir} (expected ${jsonPath})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(jsonPath, "utf8"));
  } catch (err) {
    throw new ChurnopsError("bundle_invalid", `bundle ${jsonPath} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = bundleJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ChurnopsError("bundle_invalid", `bundle ${jsonPath}: field ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const json = parsed.data;
  if (json.golden.rows.length !== json.golden.probabilities.length) {
    throw new ChurnopsError(
      "bundle_invalid",
      `bundle ${jsonPath}: golden has ${json.golden.rows.length} rows but ${json.golden.probabilities.length} probabilities`,
    );
  }
  for (let i = 1; i < json.bands.length; i++) {
    if ((json.bands[i]?.min ?? 0) >= (json.bands[i - 1]?.min ?? 0)) {
      throw new ChurnopsError("bundle_invalid", `bundle ${jsonPath}: bands must be ordered from highest min to lowest`);
    }
  }
  const onnxPath = join(dir, json.onnx.file);
  if (!existsSync(onnxPath)) throw new ChurnopsError("bundle_invalid", `bundle ${dir}: ${json.onnx.file} is missing`);
  const onnx = new Uint8Array(await readFile(onnxPath));
  const actual = sha256Hex(onnx);
  if (actual !== json.onnx.sha256) {
    throw new ChurnopsError(
      "bundle_invalid",
      `bundle ${dir}: ${json.onnx.file} has sha256 ${actual} but bundle.json says ${json.onnx.sha256}; refusing a modified model`,
    );
  }
  return { dir, json, onnx };
}

/** The band a probability falls in: the first (highest) band whose `min` it reaches. */
export function bandOf(bands: readonly Band[], probability: number): string {
  for (const band of bands) if (probability >= band.min) return band.name;
  return bands[bands.length - 1]?.name ?? "low";
}
