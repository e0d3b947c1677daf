import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError, validationError } from "../errors.js";
import { batchRequestSchema, batchResponseSchema, customerSchema, errorResponses, predictionSchema } from "../schema.js";
import { type Prediction, scoreCustomers } from "../scoring.js";
import { isPlainObject } from "../validation.js";

/** Body validation is the model's (RowValidator), not Ajv's: the schemas here document it and drive serialization. */
const documentedOnly = () => () => true;

async function score(ctx: ServerContext, request: FastifyRequest, records: readonly unknown[], pathOf: (i: number) => string): Promise<Prediction[]> {
  const lease = ctx.models.acquire();
  try {
    const outcome = await scoreCustomers(ctx, lease, records, pathOf, request.id, request.startedAt);
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
        description: "Churn probability, risk band and decision for one customer. The body's fields are the serving model's input schema (see GET /v1/model).",
        tags: ["predict"],
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
        body: batchRequestSchema(customer, limit),
        response: { 200: { description: "one prediction per customer, in request order", ...batchResponseSchema }, ...errorResponses([422]) },
      },
    },
    async (request) => {
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
      return { predictions: await score(ctx, request, customers, (i) => `customers[${i}]`) };
    },
  );
}
