import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { presentedKey } from "../auth.js";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";

export interface AuthOptions {
  ctx: Pick<ServerContext, "config" | "keys">;
}

/**
 * Who may call a route (its `config.auth`: none, key or admin), after the rate limit: a valid key is limited as
 * itself, anything else by the client address.
 */
export const authPlugin = fp<AuthOptions>(
  async (app: FastifyInstance, { ctx }) => {
    const { config } = ctx;
    const authRequired = config.auth === "required";
    const callerOf = (request: FastifyRequest) => {
      const key = presentedKey(request.headers);
      return { key, caller: key === null || ctx.keys === null ? null : ctx.keys.identify(key) };
    };
    if (config.rate_limit.max > 0) {
      // Before authentication, so failed attempts count too: a valid key is limited as itself, anything else (no
      // key, a wrong key) by the client address, which bounds guessing keys. The plugin's own global mode would
      // attach its check to each route, and route hooks run after the app's authentication hook (a wrong key got
      // 401 forever, never 429): so the check is an app-level hook, added here, before authentication. Routes
      // that set their own `rateLimit` (false, or their own limits like the console's sign-in) keep them.
      await app.register(rateLimit, { global: false });
      const limit = app.rateLimit({
        max: config.rate_limit.max,
        timeWindow: config.rate_limit.window_ms,
        keyGenerator: (request) => callerOf(request).caller?.keyId ?? `ip:${request.ip}`,
        errorResponseBuilder: (_request, context) =>
          new ApiError(
            429,
            "rate_limited",
            `rate limit reached: ${context.max} requests per ${config.rate_limit.window_ms} ms per key (or per address without a valid key); retry in ${context.after}`,
          ),
      });
      app.addHook("onRequest", async function (request, reply) {
        if (request.routeOptions.config.rateLimit !== undefined) return;
        await limit.call(this, request, reply);
      });
    }
    app.addHook("onRequest", async (request, reply) => {
      const mode = request.routeOptions.config.auth ?? "key";
      if (mode === "none") return;
      const { key, caller } = callerOf(request);
      if (caller !== null) request.apiKeyId = caller.keyId;
      if (caller?.admin === true || (mode === "key" && (caller !== null || !authRequired))) return;
      if (caller === null) {
        reply.header("www-authenticate", 'Bearer realm="churnops"');
        throw new ApiError(
          401,
          "unauthorized",
          key === null ? "an API key is required (Authorization: Bearer <key> or X-API-Key: <key>)" : "the API key is not valid",
        );
      }
      throw new ApiError(403, "forbidden", "this route needs the admin key (CHURNOPS_ADMIN_KEY)");
    });
  },
  { name: "churnops-auth" },
);
