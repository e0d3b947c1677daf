import { join } from "node:path";
import cookie from "@fastify/cookie";
import csrf from "@fastify/csrf-protection";
import formbody from "@fastify/formbody";
import helmet from "@fastify/helmet";
import fastifyStatic from "@fastify/static";
import view from "@fastify/view";
import { Eta } from "eta";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type Config, type ConsoleConfig, PROJECT_ROOT } from "../config.js";
import { isChurnopsError } from "../errors.js";
import type { BundleJson } from "../model/bundle.js";
import { registeredBundleJson } from "../model/registry.js";
import type { Store } from "../store/db.js";
import { ConsoleHttpError, guardRoutes, loginRoutes } from "./auth.js";
import { isLocale } from "./i18n.js";
import { LANG_COOKIE, requestTranslator } from "./locale.js";
import { campaignRoutes } from "./routes/campaigns.js";
import { modelRoutes } from "./routes/models.js";
import { monitoringRoutes } from "./routes/monitoring.js";
import { pageRoutes } from "./routes/pages.js";
import { riskExportRoutes } from "./routes/risk-export.js";
import { RunStatsCache } from "./run-cache.js";

export interface ConsoleDeps {
  store: Store;
  config: ConsoleConfig;
  /** The whole configuration: the models page asks the registry, campaigns use the delivery settings. */
  settings: Config;
}

export interface ConsoleOptions extends ConsoleDeps {
  /** Where the app mounts the console; links and cookies use it. */
  prefix: string;
}

// Templates and assets are read from the source tree in both the compiled CLI and the tests.
const CONSOLE_DIR = join(PROJECT_ROOT, "src", "console");

/** The bundle.json of the model version that scored a run (null when the registry no longer has it). */
export type BundleOfRun = (run: { model_name: string; model_version: string }) => Promise<BundleJson | null>;

export type Render = (request: FastifyRequest, reply: FastifyReply, template: string, data: object) => Promise<unknown>;

/**
 * The retention console as a Fastify plugin: server-rendered pages (eta via @fastify/view), its own sign-in
 * with store-backed sessions, CSRF tokens on every form and a strict CSP. Register it with a prefix.
 */
export async function consolePlugin(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const { store, config, settings, prefix } = options;
  // The API's key check does not apply here: the console has its own sign-in.
  app.addHook("onRoute", (route) => {
    // Nor does the API's per-key rate limit: console pages sit behind the console's sign-in, whose own limit
    // (per client, on the sign-in form) is the one that bounds guessing; a signed-in person browsing must not be
    // counted against the address's API budget.
    route.config = {
      ...route.config,
      auth: "none",
      rateLimit: route.config?.rateLimit ?? false,
      ...(route.url.startsWith(`${prefix}/static/`) ? { consoleAccess: "public" as const } : {}),
    };
  });
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "same-origin" },
  });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(csrf, {
    cookieKey: "churnops_csrf",
    cookieOpts: { path: prefix, sameSite: "strict", httpOnly: true, secure: config.secure_cookies === "always" ? true : "auto" },
  });
  await app.register(view, {
    engine: { eta: new Eta({ autoEscape: true, cache: true }) },
    root: join(CONSOLE_DIR, "views"),
    layout: "layout.eta",
  });
  await app.register(fastifyStatic, { root: join(CONSOLE_DIR, "static"), prefix: "/static/", maxAge: "1h" });

  const render: Render = async (request, reply, template, data) => {
    const query = request.query as Record<string, unknown>;
    if (isLocale(query.lang)) reply.setCookie(LANG_COOKIE, query.lang, { path: prefix, sameSite: "strict", httpOnly: true, maxAge: 365 * 86_400 });
    const path = request.url.split("?")[0] ?? prefix;
    const others = new URLSearchParams(Object.entries(query).filter(([k, v]) => k !== "lang" && typeof v === "string") as [string, string][]);
    const langHref = (lang: string): string => `${path}?${new URLSearchParams([...others, ["lang", lang]]).toString()}`;
    reply.type("text/html; charset=utf-8");
    return reply.view(`${template}.eta`, {
      ...data,
      i: requestTranslator(request),
      user: request.consoleUser,
      prefix,
      path,
      langHref,
      // Every page with a session has the sign-out form, so every page gets a token.
      csrf: "csrf" in data ? data.csrf : request.consoleUser === null ? null : reply.generateCsrf(),
    });
  };

  app.setErrorHandler(async (err, request, reply) => {
    const status =
      err instanceof ConsoleHttpError
        ? err.statusCode
        : isChurnopsError(err)
          ? err.code.endsWith("not_found")
            ? 404
            : 400
          : ((err as { statusCode?: number }).statusCode ?? 500);
    const code =
      err instanceof ConsoleHttpError
        ? err.code
        : isChurnopsError(err)
          ? err.code
          : status === 429
            ? "rate_limited"
            : status === 403
              ? "forbidden"
              : status < 500
                ? "bad_request"
                : "internal";
    const message = status >= 500 ? "internal error; see the server log" : err instanceof Error ? err.message : String(err);
    if (status >= 500) request.log.error({ err, event: "console.error" }, "console error");
    reply.status(status);
    const field = isChurnopsError(err) ? err.field : undefined;
    if (request.method !== "GET" && request.consoleUser === null && status !== 429)
      return { error: { code, message, ...(field === undefined ? {} : { field }) } };
    if (request.routeOptions.url === `${prefix}/login` && status === 429)
      return render(request, reply, "login", { next: `${prefix}/`, failed: false, rateLimited: true, csrf: reply.generateCsrf() });
    return render(request, reply, "error", { status, code, message, needed: err instanceof ConsoleHttpError ? (err.needed ?? null) : null });
  });

  const auth = {
    store,
    prefix,
    secure: config.secure_cookies,
    sessionTtlMs: config.session_hours * 3_600_000,
    loginAttemptsPerMinute: config.login_attempts_per_minute,
  };
  guardRoutes(app, auth);
  loginRoutes(app, auth, render);
  // Band counts and distributions of complete runs, read once and shared by the pages that show them.
  const cache = new RunStatsCache(store);
  // Bundles of the runs' model versions, read once each: reasons are worded and features filtered from them.
  const bundleOf = registeredBundleJson(settings);
  pageRoutes(app, { store, prefix, cache, bundleOf }, render);
  modelRoutes(app, { store, settings, prefix }, render);
  campaignRoutes(app, { store, settings, prefix, cache }, render);
  monitoringRoutes(app, { store, settings }, render);
  riskExportRoutes(app, store, bundleOf);
  // Unknown console paths go through the same guard (sign-in first), then answer 404.
  app.all("/*", async () => {
    throw new ConsoleHttpError(404, "not_found", "there is no such console page");
  });
}
