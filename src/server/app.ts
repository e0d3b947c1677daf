import { randomUUID } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from "fastify";
import type { ServerConfig } from "../config.js";
import { type ConsoleDeps, consolePlugin } from "../console/plugin.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import { registerMonitoringMetrics } from "../monitoring/metrics.js";
import type { Store } from "../store/db.js";
import { type ApiKeys, presentedKey } from "./auth.js";
import { publishModels, Reloader, type ReloadResult, type ServerContext } from "./context.js";
import { ApiError, type ErrorBody, handleError } from "./errors.js";
import { ServerMetrics } from "./metrics.js";
import type { ModelHolder, ModelPair } from "./models.js";
import { PredictionLog } from "./prediction-log.js";
import { adminRoutes } from "./routes/admin.js";
import { healthRoutes } from "./routes/health.js";
import { modelRoutes } from "./routes/model.js";
import { predictRoutes } from "./routes/predict.js";
import { batchRequestSchema, customerSchema } from "./schema.js";
import type { Routing } from "./variants.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call a route: anyone (`none`), an API key (`key`, the default) or the admin key. */
    auth?: "none" | "key" | "admin";
  }
  interface FastifyRequest {
    startedAt: number;
    apiKeyId: string | null;
  }
  interface FastifyInstance {
    churnops: ServerControl;
  }
}

/** What the process around the app (the CLI) uses: reload on SIGHUP, drain on SIGTERM. */
export interface ServerControl {
  reload(): Promise<ReloadResult>;
  /** Readiness answers 503 from now on; requests are still served until `app.close()`. */
  drain(): void;
  metrics: ServerMetrics;
  predictionLog: PredictionLog | null;
  routing: Routing;
}

export interface AppDeps {
  config: ServerConfig;
  /** The serving models; the app owns them from here on and closes them on `app.close()`. */
  models: ModelHolder;
  /** Where predictions are logged; null logs none. The caller closes it, after `app.close()`. */
  store: Store | null;
  log: Logger;
  /** API keys; null only when `config.auth` is "disabled". */
  keys: ApiKeys | null;
  /** Loads fresh, verified models for /admin/reload and SIGHUP; null disables reloading. */
  loadModels: (() => Promise<ModelPair>) | null;
  metrics?: ServerMetrics;
  /** The web console under /console/ (its own sign-in); absent or null serves none. */
  console?: ConsoleDeps | null;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function routingOf(config: ServerConfig, hasChallenger: boolean): Routing {
  const mode = !hasChallenger ? "champion_only" : config.shadow ? "shadow" : "split";
  return { mode, share: mode === "split" ? config.challenger_share : 0, salt: config.assignment_salt };
}

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

/**
 * The API as a Fastify app, with everything injected: config, models, store, keys. Routes live in routes/*,
 * one file per concern; this file wires hooks (request id, auth, metrics, access log), errors and docs.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, models, log } = deps;
  if (config.auth === "required" && (deps.keys === null || deps.keys.size === 0)) {
    throw new ChurnopsError("bad_config", 'server.auth is "required" but no API key is set: set CHURNOPS_API_KEYS (comma-separated keys)', {
      field: "server.auth",
    });
  }
  const metrics = deps.metrics ?? new ServerMetrics();
  // Batch runs and alerts live in the same store: one scrape of the API shows the whole system.
  if (deps.store !== null && metrics.registry.getSingleMetric("churnops_alerts_today") === undefined) registerMonitoringMetrics(metrics.registry, deps.store);
  const predictionLog =
    deps.store !== null && config.prediction_log.enabled
      ? await PredictionLog.open(
          deps.store,
          {
            flushMs: config.prediction_log.flush_ms,
            flushRows: config.prediction_log.flush_rows,
            maxBuffer: config.prediction_log.max_buffer,
            waitMs: config.prediction_log.wait_ms,
          },
          log,
          metrics.predictionLogHooks,
        )
      : null;
  const ctx: ServerContext = {
    config,
    models,
    routing: routingOf(config, models.challenger !== null),
    metrics,
    predictionLog,
    keys: deps.keys,
    log,
    reloader: new Reloader(models, deps.loadModels, metrics, log),
  };
  const state = { draining: false };
  publishModels(metrics, models.champion, models.challenger);

  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: config.body_limit_bytes,
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }) as unknown as FastifyInstance;

  // The API takes JSON only (docs/api.md): without this, Fastify's built-in text/plain parser hands a string to
  // the routes, which answered 422 instead of 415.
  app.removeContentTypeParser("text/plain");
  app.decorateRequest("startedAt", 0);
  app.decorateRequest("apiKeyId", null);
  app.decorate("churnops", {
    reload: () => ctx.reloader.reload(),
    drain: () => {
      state.draining = true;
    },
    metrics,
    predictionLog,
    routing: ctx.routing,
  } satisfies ServerControl);

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

  const authRequired = config.auth === "required";
  const callerOf = (request: FastifyRequest) => {
    const key = presentedKey(request.headers);
    return { key, caller: key === null || ctx.keys === null ? null : ctx.keys.identify(key) };
  };
  app.addHook("onRequest", async (request, reply) => {
    request.startedAt = performance.now();
    reply.header("x-request-id", request.id);
  });
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

  app.addHook("onClose", async () => {
    state.draining = true;
    await predictionLog?.close();
    await models.close();
  });

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

  healthRoutes(app, ctx, state);
  predictRoutes(app, ctx);
  modelRoutes(app, ctx);
  adminRoutes(app, ctx);
  if (deps.console != null) await app.register(consolePlugin, { prefix: "/console", ...deps.console });
  await app.ready();
  return app;
}
