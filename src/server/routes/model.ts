import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import type { ServedModel } from "../models.js";
import { customerSchema, errorResponses } from "../schema.js";

function describe(served: ServedModel, unknownFields: "reject" | "ignore"): Record<string, unknown> {
  const b = served.model.bundle;
  return {
    variant: served.variant,
    name: b.model_name,
    version: b.model_version,
    run_id: b.run_id ?? null,
    created_at: b.created_at,
    threshold: b.thresholds.operating,
    thresholds: b.thresholds,
    bands: b.bands,
    metrics: b.metrics,
    id_field: served.validator.idField,
    features: b.schema.features,
    derived: b.schema.derived,
    request_schema: customerSchema(b, unknownFields),
    golden_check: served.model.golden,
  };
}

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get(
    "/v1/model",
    {
      schema: {
        summary: "The serving model(s): name, version, metrics, input schema, threshold, risk bands",
        tags: ["model"],
        response: {
          200: {
            type: "object",
            description: "the champion (and challenger, when one is configured) and how traffic is routed",
            properties: {
              champion: { type: "object", additionalProperties: true },
              challenger: { anyOf: [{ type: "object", additionalProperties: true }, { type: "null" }] },
              routing: {
                type: "object",
                properties: { mode: { type: "string", enum: ["champion_only", "split", "shadow"] }, challenger_share: { type: "number" } },
                required: ["mode", "challenger_share"],
              },
              batch_limit: { type: "integer" },
              unknown_fields: { type: "string", enum: ["reject", "ignore"] },
            },
            required: ["champion", "challenger", "routing", "batch_limit", "unknown_fields"],
          },
          ...errorResponses(),
        },
      },
    },
    async () => {
      const { champion, challenger } = ctx.models;
      return {
        champion: describe(champion, ctx.config.unknown_fields),
        challenger: challenger === null ? null : describe(challenger, ctx.config.unknown_fields),
        routing: { mode: challenger === null ? "champion_only" : ctx.routing.mode, challenger_share: ctx.routing.mode === "split" ? ctx.routing.share : 0 },
        batch_limit: ctx.config.batch_limit,
        unknown_fields: ctx.config.unknown_fields,
      };
    },
  );
}
