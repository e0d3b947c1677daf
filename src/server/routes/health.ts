import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { errorSchema } from "../schema.js";

const open = { auth: "none" as const, rateLimit: false as const };

const modelRef = { type: "object", properties: { name: { type: "string" }, version: { type: "string" } }, required: ["name", "version"] };

/** Liveness and readiness: open to probes (no key, no rate limit). */
export function healthRoutes(app: FastifyInstance, ctx: ServerContext, state: { draining: boolean }): void {
  app.get(
    "/healthz",
    {
      config: open,
      schema: {
        summary: "The process is alive",
        tags: ["health"],
        security: [],
        response: { 200: { type: "object", properties: { status: { type: "string", enum: ["ok"] } }, required: ["status"] } },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      config: open,
      schema: {
        summary: "A verified model is loaded and the server is not shutting down",
        tags: ["health"],
        security: [],
        response: {
          200: {
            type: "object",
            properties: { status: { type: "string", enum: ["ready"] }, champion: modelRef, challenger: { anyOf: [modelRef, { type: "null" }] } },
            required: ["status", "champion", "challenger"],
          },
          503: { description: "shutting down", ...errorSchema },
        },
      },
    },
    async () => {
      if (state.draining) throw new ApiError(503, "shutting_down", "the server is shutting down");
      return { status: "ready" as const, champion: ctx.models.champion.ref, challenger: ctx.models.challenger?.ref ?? null };
    },
  );

  app.get(
    "/metrics",
    { config: open, schema: { summary: "Prometheus metrics", tags: ["health"], security: [], produces: ["text/plain"] } },
    async (_request, reply) => {
      reply.header("content-type", ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  );
}
