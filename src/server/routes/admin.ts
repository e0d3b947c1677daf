import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { errorResponses } from "../schema.js";

const modelRef = { type: "object", properties: { name: { type: "string" }, version: { type: "string" } }, required: ["name", "version"] };

export function adminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post(
    "/admin/reload",
    {
      config: { auth: "admin" },
      schema: {
        summary: "Load and verify the current models again, then swap them in (admin key)",
        description:
          "Requests in flight finish on the old model. A bundle that fails verification (sha256, golden vectors) is refused with 409 and the old model keeps serving.",
        tags: ["admin"],
        response: {
          200: {
            type: "object",
            properties: {
              champion: { ...modelRef, properties: { ...modelRef.properties, previous: modelRef }, required: ["name", "version", "previous"] },
              challenger: { anyOf: [modelRef, { type: "null" }] },
              duration_ms: { type: "number" },
            },
            required: ["champion", "challenger", "duration_ms"],
          },
          ...errorResponses([403, 409]),
        },
      },
    },
    async () => {
      if (!ctx.reloader.enabled) throw new ApiError(409, "reload_unavailable", "this server was started without a model loader; restart it instead");
      return ctx.reloader.reload();
    },
  );
}
