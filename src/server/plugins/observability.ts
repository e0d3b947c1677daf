import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { ServerContext } from "../context.js";

export interface ObservabilityOptions {
  ctx: Pick<ServerContext, "config" | "metrics">;
}

/**
 * Every request timed from its start and answered with its X-Request-Id; on the response, the request counter and
 * latency histogram, and the access log line when `server.access_log` is on. Registered before authentication, so
 * refused requests are timed and counted too.
 */
export const observabilityPlugin = fp<ObservabilityOptions>(
  async (app: FastifyInstance, { ctx }) => {
    const { config, metrics } = ctx;
    app.addHook("onRequest", async (request, reply) => {
      request.startedAt = performance.now();
      reply.header("x-request-id", request.id);
    });
    app.addHook("onResponse", async (request, reply) => {
      const route = request.routeOptions.url ?? "unmatched";
      const labels = { route, method: request.method, status: String(reply.statusCode) };
      const seconds = (performance.now() - request.startedAt) / 1000;
      metrics.requests.inc(labels);
      metrics.latency.observe(labels, seconds);
      if (config.access_log) {
        request.log.info(
          { event: "http.request", method: request.method, route, status: reply.statusCode, ms: Math.round(seconds * 1e5) / 100, key_id: request.apiKeyId },
          "request",
        );
      }
    });
  },
  { name: "churnops-observability" },
);
