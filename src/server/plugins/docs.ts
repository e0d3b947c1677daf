import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { ServerContext } from "../context.js";
import { batchRequestSchema, customerSchema } from "../schema.js";

/** The OpenAPI document with the request schemas of the models serving now (they may have changed on reload). */
function liveSpec(doc: Record<string, unknown>, ctx: ServerContext): Record<string, unknown> {
  const customer = customerSchema(ctx.models.champion.model.bundle, ctx.config.unknown_fields);
  const paths = doc.paths as Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: unknown }> } } }> | undefined;
  const set = (path: string, schema: unknown): void => {
    const content = paths?.[path]?.post?.requestBody?.content?.["application/json"];
    if (content !== undefined) content.schema = schema;
  };
  set("/v1/predict", customer);
  set("/v1/predict/batch", batchRequestSchema(customer, ctx.config.batch_limit));
  return doc;
}

export interface DocsOptions {
  ctx: ServerContext;
}

/** The OpenAPI document (/openapi.json) and its page (/docs), open like the document, with the live request schemas. */
export const docsPlugin = fp<DocsOptions>(
  async (app: FastifyInstance, { ctx }) => {
    await app.register(swagger, {
      openapi: {
        openapi: "3.0.3",
        info: {
          title: "churnops prediction API",
          version: "1",
          description: "Real-time churn predictions from a verified model bundle. The request schema is generated from the serving model.",
        },
        components: {
          securitySchemes: {
            bearer: { type: "http", scheme: "bearer", description: "an API key (CHURNOPS_API_KEYS)" },
            apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
          },
        },
        security: [{ bearer: [] }, { apiKey: [] }],
      },
    });
    // The docs page is open like the document it shows; its routes come from the plugin, so mark them here.
    await app.register(async (docs) => {
      docs.addHook("onRoute", (route) => {
        route.config = { ...route.config, auth: "none" };
      });
      await docs.register(swaggerUi, {
        routePrefix: "/docs",
        uiConfig: { docExpansion: "list" },
        transformSpecification: (doc) => liveSpec(doc as Record<string, unknown>, ctx),
        transformSpecificationClone: true,
      });
    });
    app.get("/openapi.json", { config: { auth: "none", rateLimit: false }, schema: { hide: true } }, async () =>
      liveSpec(structuredClone(app.swagger()) as unknown as Record<string, unknown>, ctx),
    );
  },
  { name: "churnops-docs" },
);
