import type { FastifyInstance } from "fastify";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/db.js";
import { buildApp } from "./app.js";
import type { ApiKeys } from "./auth.js";
import { loadPair, ModelHolder, type ModelRefs } from "./models.js";

export interface RunOptions {
  config: Config;
  refs: ModelRefs;
  store: Store | null;
  keys: ApiKeys | null;
  log: Logger;
  /** Serve the web console on this store; null serves none. */
  consoleStore?: Store | null;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** Resolves once the server has shut down (SIGTERM/SIGINT or `shutdown()`), prediction log flushed. */
  closed: Promise<void>;
  shutdown(reason: string): Promise<void>;
}

/**
 * Load and verify the models, build the app and listen. SIGHUP reloads the models (as POST /admin/reload does);
 * SIGTERM and SIGINT drain: readiness fails, new connections are refused, requests in flight finish, the
 * prediction log is flushed. Past `shutdown_timeout_ms` the remaining connections are cut.
 */
export async function runServer(options: RunOptions): Promise<RunningServer> {
  const { config, log } = options;
  const server = config.server;
  const pair = await loadPair(config, options.refs, { fresh: false });
  const models = new ModelHolder(pair, server.unknown_fields);
  let app: FastifyInstance;
  try {
    app = await buildApp({
      config: server,
      models,
      store: options.store,
      log,
      keys: options.keys,
      loadModels: () => loadPair(config, options.refs, { fresh: true }),
      console: options.consoleStore == null ? null : { store: options.consoleStore, config: config.console, settings: config },
    });
  } catch (err) {
    await models.close();
    throw err;
  }
  const url = await app.listen({ host: server.host, port: server.port });

  const onHup = (): void => {
    log.info({ event: "model.reload_requested", signal: "SIGHUP" }, "reloading models");
    // Refusals are logged by the reloader; the old model keeps serving.
    app.churnops.reload().catch(() => undefined);
  };
  let closing: Promise<void> | null = null;
  let markClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      process.off("SIGHUP", onHup);
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onTerm);
      log.info({ event: "server.draining", reason }, "shutting down: draining requests");
      app.churnops.drain();
      const force = setTimeout(() => {
        log.warn({ event: "server.force_close" }, "requests still open after the shutdown timeout; closing their connections");
        app.server.closeAllConnections();
      }, server.shutdown_timeout_ms);
      force.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(force);
        markClosed();
      }
      log.info({ event: "server.stopped", predictions_pending: app.churnops.predictionLog?.pending ?? 0 }, "server stopped");
    })();
    return closing;
  };
  const onTerm = (signal: NodeJS.Signals): void => {
    void shutdown(signal);
  };
  process.on("SIGHUP", onHup);
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onTerm);

  log.info(
    { event: "server.listening", url, champion: models.champion.ref, challenger: models.challenger?.ref ?? null, routing: app.churnops.routing },
    "churnops API listening",
  );
  return { app, url, closed, shutdown };
}
