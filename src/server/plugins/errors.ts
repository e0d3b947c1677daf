import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { type ErrorBody, handleError } from "../errors.js";

/**
 * Errors and unknown routes as the API's JSON error body: a known path called with another method answers 405
 * with Allow, an unknown one 404, and every thrown error goes through handleError. Registered before any route,
 * so that it sees them all.
 */
export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    // Which methods each path has, so a known path called with another method answers 405 with Allow, not 404.
    const methodsByPath = new Map<string, Set<string>>();
    app.addHook("onRoute", (route) => {
      const set = methodsByPath.get(route.url) ?? new Set<string>();
      for (const m of Array.isArray(route.method) ? route.method : [route.method]) set.add(m);
      methodsByPath.set(route.url, set);
    });
    const noRoute = (request: FastifyRequest, reply: FastifyReply): ErrorBody => {
      const path = request.url.split("?")[0] ?? "";
      const allowed = methodsByPath.get(path);
      if (allowed === undefined) {
        reply.status(404);
        return { error: { code: "not_found", message: `no route ${request.method} ${path}` } };
      }
      reply.header("allow", [...allowed].join(", "));
      reply.status(405);
      return { error: { code: "method_not_allowed", message: `${request.method} is not allowed on ${path}; use ${[...allowed].join(" or ")}` } };
    };
    app.setNotFoundHandler((request, reply) => reply.send(noRoute(request, reply)));
    // A request for no route can still fail first in body parsing (e.g. QUERY without a content type): it is a 404/405.
    app.setErrorHandler((err, request, reply) =>
      reply.send(request.is404 ? noRoute(request, reply) : handleError(err instanceof Error ? err : new Error(String(err)), request, reply)),
    );
  },
  { name: "churnops-errors" },
);
