import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { inject } from "vitest";
import { type Config, loadConfig, type ServerConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import type { BundleJson } from "../../src/model/bundle.js";
import { buildApp } from "../../src/server/app.js";
import { ApiKeys } from "../../src/server/auth.js";
import { loadPair, ModelHolder } from "../../src/server/models.js";
import type { Store } from "../../src/store/db.js";

export const API_KEY = "test-key-0123456789abcdef";
export const OTHER_KEY = "other-key-0123456789abcdef";
export const ADMIN_KEY = "admin-key-0123456789abcdef";
export const auth = { authorization: `Bearer ${API_KEY}` };
export const admin = { authorization: `Bearer ${ADMIN_KEY}` };

/** A private copy of the trained fixture bundle; `version` rewrites bundle.json's model_version (sha256 covers only model.onnx). */
export function copyBundle(version?: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), "churnops-api-bundle-")), "bundle");
  cpSync(inject("fixture").bundleDir, dir, { recursive: true });
  if (version !== undefined) setBundleVersion(dir, version);
  return dir;
}

export function setBundleVersion(dir: string, version: string): void {
  const path = join(dir, "bundle.json");
  const json = JSON.parse(readFileSync(path, "utf8")) as BundleJson;
  json.model_version = version;
  writeFileSync(path, JSON.stringify(json));
}

export function bundleJson(dir: string): BundleJson {
  return JSON.parse(readFileSync(join(dir, "bundle.json"), "utf8")) as BundleJson;
}

/** A valid customer of the fixture model (synthetic subscription data). */
export function customer(id: string | number = "c-1", overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    customer_id: id,
    tenure_months: 11,
    monthly_charges: 80.94,
    total_charges: 908.77,
    num_support_tickets: 1,
    num_logins_30d: 14,
    contract_type: "month-to-month",
    payment_method: "bank_transfer",
    ...overrides,
  };
}

export function testConfig(server: Partial<ServerConfig> = {}): Config {
  const home = mkdtempSync(join(tmpdir(), "churnops-api-home-"));
  const base = loadConfig({ env: { CHURNOPS_HOME: home }, cwd: home });
  return { ...base, server: { ...base.server, access_log: false, ...server } };
}

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  close(): Promise<void>;
}

/** The real app around verified models loaded from bundle directories; reload loads the same directories again. */
export async function startApp(
  options: { champion?: string; challenger?: string | null; server?: Partial<ServerConfig>; store?: Store | null; keys?: ApiKeys | null } = {},
): Promise<TestApp> {
  const config = testConfig(options.server);
  const refs = { champion: options.champion ?? copyBundle(), challenger: options.challenger ?? null };
  const pair = await loadPair(config, refs, { fresh: false });
  const app = await buildApp({
    config: config.server,
    models: new ModelHolder(pair, config.server.unknown_fields),
    store: options.store ?? null,
    log: createLogger({ test: true }, "silent"),
    keys: options.keys === undefined ? new ApiKeys([API_KEY, OTHER_KEY], ADMIN_KEY) : options.keys,
    loadModels: () => loadPair(config, refs, { fresh: true }),
  });
  return { app, config, close: () => app.close() };
}

export function predict(app: FastifyInstance, body: unknown, headers: Record<string, string> = auth): Promise<LightMyRequestResponse> {
  return app.inject({ method: "POST", url: "/v1/predict", headers: { "content-type": "application/json", ...headers }, payload: JSON.stringify(body) });
}

export function predictBatch(app: FastifyInstance, customers: unknown, headers: Record<string, string> = auth): Promise<LightMyRequestResponse> {
  return app.inject({
    method: "POST",
    url: "/v1/predict/batch",
    headers: { "content-type": "application/json", ...headers },
    payload: JSON.stringify({ customers }),
  });
}

export interface ErrorJson {
  error: { code: string; message: string; field?: string; violations?: { field: string; code: string; message: string; expected?: string }[] };
}

/** `n` distinct valid customers with varied features. */
export function batchFor(n: number): Record<string, unknown>[] {
  const contracts = ["month-to-month", "one_year", "two_year"];
  return Array.from({ length: n }, (_, i) =>
    customer(`b-${i}`, { tenure_months: (i * 7) % 72, num_support_tickets: i % 6, contract_type: contracts[i % 3], monthly_charges: 20 + ((i * 13) % 90) }),
  );
}
