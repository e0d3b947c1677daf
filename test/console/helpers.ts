import type { FastifyInstance } from "fastify";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { checkPerformance } from "../../src/monitoring/performance.js";
import { buildApp } from "../../src/server/app.js";
import { ApiKeys } from "../../src/server/auth.js";
import { loadPair, ModelHolder } from "../../src/server/models.js";
import type { Store } from "../../src/store/db.js";
import { upsertOutcomes } from "../../src/store/outcomes.js";
import { addUser, type Role } from "../../src/store/users.js";
import type { SeededRun } from "../campaigns/seed.js";
import { copyHome } from "../monitoring/helpers.js";
import { ADMIN_KEY, API_KEY, copyBundle, testConfig } from "../server/helpers.js";
import type { Fixture } from "../setup/fixture.js";

export const PASSWORD = "correct horse battery";

export interface ConsoleServer {
  app: FastifyInstance;
  /** Base URL of the console, e.g. http://127.0.0.1:41234/console */
  base: string;
  close(): Promise<void>;
}

/** The real app (API keys required, real models) with the console on `store`, listening on a free port. */
export async function startConsole(store: Store, consoleConfig: { login_attempts_per_minute?: number } = {}, settings?: Config): Promise<ConsoleServer> {
  const config = settings ?? testConfig();
  const refs = { champion: copyBundle(), challenger: null };
  const pair = await loadPair(config, refs, { fresh: false });
  // CHURNOPS_TEST_LOG=error shows the server's log (a page's "internal error" says what broke).
  const app = await buildApp({
    config: config.server,
    models: new ModelHolder(pair, config.server.unknown_fields),
    store: null,
    log: createLogger({ test: true }, (process.env.CHURNOPS_TEST_LOG ?? "silent") as "silent"),
    keys: new ApiKeys([API_KEY], ADMIN_KEY),
    loadModels: null,
    console: { store, config: { ...config.console, ...consoleConfig }, settings: config },
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { app, base: `${url}/console`, close: () => app.close() };
}

/**
 * Settings over a private copy of the trained fixture's home: a real registry (v1, the champion) that the models
 * page lists and promotes through the trainer, and the export folder campaigns are sent to.
 */
export function registryConfig(fixture: Fixture, overrides: Record<string, unknown> = {}): Config {
  const home = copyHome(fixture);
  return loadConfig({ env: { CHURNOPS_HOME: home, CHURNOPS_PYTHON: fixture.python, MLFLOW_TRACKING_URI: "" }, cwd: home, ...overrides });
}

/** One user of each role, all with `PASSWORD`. */
export async function addUsers(store: Store): Promise<void> {
  for (const role of ["viewer", "operator", "admin"] satisfies Role[]) await addUser(store, role, role, PASSWORD);
}

/** A browser-like HTTP client: keeps cookies, does not follow redirects, finds CSRF tokens in pages. */
export class Client {
  private readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  async request(method: string, path: string, form?: Record<string, string>): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      redirect: "manual",
      ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (value === "" || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  get(path: string): Promise<Response> {
    return this.request("GET", path);
  }

  /** The CSRF token of the first form on a page. */
  async token(path: string): Promise<string> {
    const html = await (await this.get(path)).text();
    const match = /name="_csrf" value="([^"]+)"/.exec(html);
    if (match === null) throw new Error(`no CSRF token on ${path}`);
    return match[1] as string;
  }

  async signIn(username: string, password = PASSWORD): Promise<Response> {
    const csrf = await this.token("/login");
    return this.request("POST", "/login", { _csrf: csrf, username, password });
  }
}

/**
 * Labels for a seeded run's customers (churn drawn deterministically by each one's seeded probability), observed
 * on `observedAt`, and the realised performance they give: a monitoring page then has a realised point.
 */
export async function realiseRun(store: Store, settings: Config, run: SeededRun, observedAt: string): Promise<void> {
  await upsertOutcomes(
    store,
    run.customers.map((c, k) => ({
      customer_id: c.id,
      observed_at: observedAt,
      churned: ((k * 7919) % 1000) / 1000 < c.probability ? 1 : 0,
      source: "test",
      ingested_at: new Date().toISOString(),
    })),
  );
  await checkPerformance({
    store,
    config: { ...settings, monitoring: { ...settings.monitoring, performance: { ...settings.monitoring.performance, min_positives: 1 } } },
    log: createLogger({ test: true }, "silent"),
  });
}
