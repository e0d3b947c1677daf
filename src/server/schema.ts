import { BLANK_CHARACTERS, magnitudeLimit } from "../data/validate.js";
import type { BundleJson, FeatureSpec } from "../model/bundle.js";

/**
 * JSON Schemas of the API. The customer schema is generated from the loaded bundle's input schema, so a model
 * trained on another table serves its own fields; it documents exactly what `validateCustomer` accepts.
 */
export type JsonSchema = { [key: string]: unknown };

/** Customer ids may be text or a whole number that JSON carries exactly. */
export const ID_MAX_LENGTH = 128;

/** The request field that carries the customer id: the bundle's id column, or `customer_id` when it had none. */
export function idFieldOf(bundle: BundleJson): string {
  return bundle.schema.id_column ?? "customer_id";
}

/** Blank text is missing, as in batch scoring and training (see BLANK_CHARACTERS). */
const blankText: JsonSchema = { type: "string", pattern: `^[${BLANK_CHARACTERS}]*$`, description: "blank text: missing" };

function featureSchema(f: FeatureSpec): JsonSchema {
  const value = valueSchema(f);
  return f.required ? value : { anyOf: [value, blankText], description: value.description };
}

function valueSchema(f: FeatureSpec): JsonSchema {
  if (f.kind === "categorical") {
    // OpenAPI 3.0 spells "or null" as nullable; a type list showed as "Unknown Type: number,null" in /docs.
    return f.required
      ? { type: "string", enum: [...f.categories] }
      : { type: "string", nullable: true, enum: [...f.categories, null], description: "null, absent or blank: missing" };
  }
  const lower = f.lower_bound ?? null;
  const upper = f.upper_bound ?? null;
  const limit = magnitudeLimit(f.integer);
  const s: JsonSchema = {
    type: f.integer ? "integer" : "number",
    ...(f.required ? {} : { nullable: true }),
    minimum: lower === null ? -limit : Math.max(lower, -limit),
    maximum: upper === null ? limit : Math.min(upper, limit),
  };
  const seen: string[] = [];
  if (f.min !== null && f.min !== undefined) seen.push(`min ${f.min}`);
  if (f.max !== null && f.max !== undefined) seen.push(`max ${f.max}`);
  if (seen.length > 0) s.description = `seen in training: ${seen.join(", ")}${f.required ? "" : "; null, absent or blank: missing"}`;
  else if (!f.required) s.description = "null, absent or blank: missing";
  return s;
}

export function idSchema(): JsonSchema {
  return {
    anyOf: [
      { type: "string", minLength: 1, maxLength: ID_MAX_LENGTH },
      { type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
    ],
    description: "the customer's id (text, or a whole number); it also decides the customer's variant",
  };
}

/** One customer as a request carries it: the id field plus every feature of the model's input schema. */
export function customerSchema(bundle: BundleJson, unknownFields: "reject" | "ignore"): JsonSchema {
  const idField = idFieldOf(bundle);
  const properties: Record<string, JsonSchema> = { [idField]: idSchema() };
  const required = [idField];
  for (const f of bundle.schema.features) {
    properties[f.name] = featureSchema(f);
    if (f.required) required.push(f.name);
  }
  return {
    type: "object",
    title: `Customer (${bundle.model_name} v${bundle.model_version})`,
    properties,
    required,
    additionalProperties: unknownFields === "ignore",
    example: exampleCustomer(bundle),
  };
}

/** A real customer for the /docs examples: the bundle's first golden row (which the model is checked against). */
export function exampleCustomer(bundle: BundleJson): Record<string, unknown> {
  const golden = bundle.golden.rows[0] ?? {};
  const example: Record<string, unknown> = { [idFieldOf(bundle)]: golden[idFieldOf(bundle)] ?? "c-0001" };
  for (const f of bundle.schema.features) example[f.name] = golden[f.name] ?? null;
  return example;
}

export function batchRequestSchema(customer: JsonSchema, batchLimit: number): JsonSchema {
  return {
    type: "object",
    properties: {
      customers: {
        type: "array",
        minItems: 1,
        maxItems: batchLimit,
        items: customer,
        description: `1 to ${batchLimit} customers, scored in one model call; more answers 413`,
      },
    },
    ...(customer.example === undefined ? {} : { example: { customers: [customer.example] } }),
    required: ["customers"],
    additionalProperties: false,
  };
}

const modelRef: JsonSchema = {
  type: "object",
  properties: { name: { type: "string" }, version: { type: "string" } },
  required: ["name", "version"],
  additionalProperties: false,
};

const featureValue: JsonSchema = { type: ["number", "string", "null"] };

export const explanationSchema: JsonSchema = {
  type: ["object", "null"],
  description:
    "Why this customer scores as they do (docs/bundle.md, Explanations): baseline + the sum of contributions is the log-odds of churn_probability. null when the model's bundle carries no contributions; left out with ?explain=false.",
  properties: {
    baseline: { type: "number", description: "mean log-odds of the training customers" },
    contributions: {
      type: "array",
      description: "one per raw feature (a categorical column counts once), on the log-odds scale",
      items: {
        type: "object",
        properties: { feature: { type: "string" }, value: featureValue, contribution: { type: "number" } },
        required: ["feature", "value", "contribution"],
        additionalProperties: false,
      },
    },
    reasons: {
      type: "array",
      description: "the features that raise the risk the most (positive contributions, largest first; ?reasons=N, default 4)",
      items: {
        type: "object",
        properties: {
          feature: { type: "string" },
          label: { type: "string" },
          value: featureValue,
          contribution: { type: "number" },
          text: { type: "string", description: "a sentence from the training profile, in ?lang=en|ja" },
        },
        required: ["feature", "label", "value", "contribution", "text"],
        additionalProperties: false,
      },
    },
  },
  required: ["baseline", "contributions", "reasons"],
  additionalProperties: false,
};

export const explainQuerySchema: JsonSchema = {
  type: "object",
  properties: {
    explain: { type: "string", enum: ["true", "false"], default: "true", description: "false leaves the explanation out" },
    reasons: { type: "string", pattern: "^0*([1-9]|10)$", description: "how many reasons (1 to 10, default 4)" },
    lang: { type: "string", enum: ["en", "ja"], default: "en", description: "language of the reason texts" },
  },
};

export const predictionSchema: JsonSchema = {
  type: "object",
  properties: {
    customer_id: { type: "string" },
    churn_probability: { type: "number", minimum: 0, maximum: 1 },
    risk_band: { type: "string" },
    decision: { type: "boolean", description: "true when churn_probability reaches the model's operating threshold" },
    model: modelRef,
    variant: { type: "string", enum: ["champion", "challenger"] },
    explanation: explanationSchema,
  },
  required: ["customer_id", "churn_probability", "risk_band", "decision", "model", "variant"],
  additionalProperties: false,
};

export const batchResponseSchema: JsonSchema = {
  type: "object",
  properties: { predictions: { type: "array", items: predictionSchema } },
  required: ["predictions"],
  additionalProperties: false,
};

export const errorSchema: JsonSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        field: { type: "string" },
        violations: {
          type: "array",
          items: {
            type: "object",
            properties: { field: { type: "string" }, code: { type: "string" }, message: { type: "string" }, expected: { type: "string" } },
            required: ["field", "code", "message"],
            additionalProperties: false,
          },
        },
      },
      required: ["code", "message"],
      additionalProperties: false,
    },
  },
  required: ["error"],
  additionalProperties: false,
};

/** Every failure a protected route may answer, so the OpenAPI document lists them (schemathesis checks this). */
export function errorResponses(extra: readonly number[] = []): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const status of [400, 401, 413, 415, 429, 500, 503, ...extra].sort()) {
    out[String(status)] = { description: ERROR_DESCRIPTIONS[status] ?? "error", ...errorSchema };
  }
  return out;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "malformed JSON or request",
  401: "no valid API key",
  403: "the key is not the admin key",
  409: "the new model failed verification; the old one keeps serving",
  413: "body or batch over the limit",
  415: "body is not JSON",
  422: "a field cannot be scored (every violation is listed)",
  429: "rate limit of this key reached",
  500: "internal error",
  503: "shutting down, no model, or the prediction log stayed full (retry later)",
};
