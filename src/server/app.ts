import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import type { ServerConfig } from "../config.js";
import { type ConsoleDeps, consolePlugin } from "../console/plugin.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import { registerMonitoringMetrics } from "../monitoring/metrics.js";
import type { Store } from "../store/db.js";
import type { ApiKeys } from "./auth.js";
import { publishModels, Reloader, type ReloadResult, type ServerContext } from "./context.js";
import { ServerMetrics } from "./metrics.js";
import type { ModelHolder, ModelPair } from "./models.js";
import { authPlugin } from "./plugins/auth.js";
import { docsPlugin } from "./plugins/docs.js";
import { errorsPlugin } from "./plugins/errors.js";
import { observabilityPlugin } from "./plugins/observability.js";
import { PredictionLog } from "./prediction-log.js";
import { adminRoutes } from "./routes/admin.js";
import { healthRoutes } from "./routes/health.js";
import { modelRoutes } from "./routes/model.js";
import { predictRoutes } from "./routes/predict.js";
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

/**
 * The API as a Fastify app, with everything injected: config, models, store, keys. Routes live in routes/*,
 * one file per concern; the cross-cutting parts are plugins in plugins/* (errors and 404/405, metrics and access
 * log, rate limit and auth, docs); this file builds the context and registers them.
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

  // Order matters: errors first (it sees every route), then timing and metrics (they see refused requests too),
  // then the rate limit and authentication.
  await app.register(errorsPlugin);
  await app.register(observabilityPlugin, { ctx });
  await app.register(authPlugin, { ctx });

  app.addHook("onClose", async () => {
    state.draining = true;
    await predictionLog?.close();
    await models.close();
  });

  await app.register(docsPlugin, { ctx });

  healthRoutes(app, ctx, state);
  predictRoutes(app, ctx);
  modelRoutes(app, ctx);
  adminRoutes(app, ctx);
  if (deps.console != null) await app.register(consolePlugin, { prefix: "/console", ...deps.console });
  await app.ready();
  return app;
}
