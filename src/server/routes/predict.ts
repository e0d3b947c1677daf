import type { FastifyInstance, FastifyRequest } from "fastify";
import { DEFAULT_REASONS, parseLanguage } from "../../model/reasons.js";
import type { ServerContext } from "../context.js";
import { ApiError, validationError } from "../errors.js";
import { batchRequestSchema, batchResponseSchema, customerSchema, errorResponses, explainQuerySchema, predictionSchema } from "../schema.js";
import { type ExplainOptions, type Prediction, scoreCustomers, yieldTurn } from "../scoring.js";
import { isPlainObject } from "../validation.js";

/** Body validation is the model's (RowValidator), not Ajv's: the schemas here document it and drive serialization. */
const documentedOnly = () => () => true;

const MAX_REASONS = 10;

/**
 * Predictions serialised at a time in a large batch's answer. A 1,000-customer answer with explanations is about a
 * megabyte of JSON; serialised in one piece (as Fastify does a returned object) it held the event loop for
 * milliseconds while single predictions waited. In slices, other requests get a turn between them.
 */
const SERIALIZE_SLICE = 128;

/** `{"predictions": [...]}` as Fastify would send it (the objects are exactly the response schema's), in slices. */
async function batchBody(predictions: readonly Prediction[]): Promise<string> {
  const parts: string[] = [];
  for (let i = 0; i < predictions.length; i += SERIALIZE_SLICE) {
    if (i > 0) await yieldTurn();
    const slice = predictions.slice(i, i + SERIALIZE_SLICE);
    parts.push(slice.map((p) => JSON.stringify(p)).join(","));
  }
  return `{"predictions":[${parts.join(",")}]}`;
}

/** ?explain=true|false, ?reasons=N, ?lang=en|ja; anything else is the client's mistake (422 naming the parameter). */
export function explainOptions(query: unknown): ExplainOptions {
  const q = isPlainObject(query) ? query : {};
  const bad = (field: string, message: string, expected: string): never => {
    throw validationError([{ field, code: "invalid_query", message: `${field}: ${message}`, expected }], 1);
  };
  const explainText = q.explain ?? "true";
  if (explainText !== "true" && explainText !== "false") bad("explain", `got ${JSON.stringify(explainText)}`, "true or false");
  const reasonsText = q.reasons ?? String(DEFAULT_REASONS);
  const reasons = typeof reasonsText === "string" && /^[0-9]+$/.test(reasonsText) ? Number(reasonsText) : Number.NaN;
  if (!(reasons >= 1 && reasons <= MAX_REASONS)) bad("reasons", `got ${JSON.stringify(reasonsText)}`, `a whole number from 1 to ${MAX_REASONS}`);
  const language = parseLanguage(q.lang ?? "en");
  if (language === null) bad("lang", `got ${JSON.stringify(q.lang)}`, "en or ja");
  return { explain: explainText === "true", reasons, language: language ?? "en" };
}

async function score(ctx: ServerContext, request: FastifyRequest, records: readonly unknown[], pathOf: (i: number) => string): Promise<Prediction[]> {
  const options = explainOptions(request.query);
  const lease = ctx.models.acquire();
  try {
    const outcome = await scoreCustomers(ctx, lease, records, pathOf, request.id, request.startedAt, options);
    if (!outcome.ok) throw validationError(outcome.violations, outcome.total);
    return outcome.predictions;
  } finally {
    lease.release();
  }
}

export function predictRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const customer = customerSchema(ctx.models.champion.model.bundle, ctx.config.unknown_fields);
  const limit = ctx.config.batch_limit;

  app.post(
    "/v1/predict",
    {
      validatorCompiler: documentedOnly,
      schema: {
        summary: "Score one customer",
        description:
          "Churn probability, risk band, decision and explanation (reasons) for one customer. The body's fields are the serving model's input schema (see GET /v1/model).",
        tags: ["predict"],
        querystring: explainQuerySchema,
        body: customer,
        response: { 200: { description: "the prediction", ...predictionSchema }, ...errorResponses([422]) },
      },
    },
    async (request) => (await score(ctx, request, [request.body], () => ""))[0],
  );

  app.post(
    "/v1/predict/batch",
    {
      validatorCompiler: documentedOnly,
      schema: {
        summary: `Score up to ${limit} customers in one model call`,
        description: "All customers are validated first: if any is invalid, none is scored and every violation is listed (422).",
        tags: ["predict"],
        querystring: explainQuerySchema,
        body: batchRequestSchema(customer, limit),
        response: { 200: { description: "one prediction per customer, in request order", ...batchResponseSchema }, ...errorResponses([422]) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (!isPlainObject(body))
        throw validationError([{ field: "(body)", code: "wrong_type", message: 'the body must be a JSON object {"customers": [...]}' }], 1);
      const unknown = Object.keys(body).filter((k) => k !== "customers");
      if (unknown.length > 0) {
        throw validationError(
          unknown.map((k) => ({ field: k, code: "unknown_field", message: `${k}: the batch body has only "customers"` })),
          unknown.length,
        );
      }
      const customers = body.customers;
      if (!Array.isArray(customers)) {
        const code = customers === undefined || customers === null ? "missing" : "wrong_type";
        throw validationError(
          [{ field: "customers", code, message: "customers: a list of customers is required", expected: `a list of 1 to ${limit} customers` }],
          1,
        );
      }
      if (customers.length === 0) {
        throw validationError(
          [{ field: "customers", code: "empty", message: "customers: the list is empty", expected: `a list of 1 to ${limit} customers` }],
          1,
        );
      }
      if (customers.length > limit) {
        throw new ApiError(413, "batch_too_large", `customers: ${customers.length} customers in one batch; the limit is ${limit}`, { field: "customers" });
      }
      const predictions = await score(ctx, request, customers, (i) => `customers[${i}]`);
      if (predictions.length <= SERIALIZE_SLICE) return { predictions };
      reply.type("application/json; charset=utf-8");
      return await batchBody(predictions);
    },
  );
}
