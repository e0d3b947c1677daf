import { createHash } from "node:crypto";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { z } from "zod";
import type { Config } from "../config.js";
import { KEY_ENV, signatureMatches, signingKey } from "./signing.js";

/**
 * The registry cache: `<home>/registry-cache.json`, rewritten atomically by the trainer after every train,
 * promote, rollback, resolve and `models` (trainer/src/churnops_trainer/registry.py, `write_cache`). MLflow stays
 * the one source of truth: the cache is valid only while the SQLite store it was read from is byte-for-byte the
 * file it was (same size, mtime and inode), and only when its seal matches (an HMAC with CHURNOPS_BUNDLE_KEY,
 * a plain sha256 otherwise). Anything else is a reason to ask the trainer, never to use the cache.
 */
export const CACHE_FILE = "registry-cache.json";

const versionSchema = z.object({
  version: z.string().regex(/^\d+$/),
  aliases: z.array(z.string()),
  run_id: z.string(),
  created_at: z.string(),
  metrics: z.record(z.string(), z.number().nullable()),
  threshold: z.number().nullable(),
  bundle_path: z.string(),
  bundle_digest: z.string().nullable(),
  bundle_signature: z.string().nullable(),
  data_source: z.string().nullable(),
  data_fingerprint: z.string().nullable(),
  schema_summary: z.string().nullable(),
});

const storeSchema = z.object({ path: z.string(), size: z.number().int(), mtime_ns: z.string(), ino: z.string() });

const cacheSchema = z.object({
  format: z.literal(1),
  store: storeSchema,
  models: z.record(z.string(), z.object({ aliases: z.record(z.string(), z.string()), versions: z.array(versionSchema) })),
});

export type RegisteredVersion = z.infer<typeof versionSchema>;
export type RegistryCache = z.infer<typeof cacheSchema>;
export type CacheRead = { ok: true; cache: RegistryCache } | { ok: false; reason: string };

/** The SQLite file behind the tracking store, as the trainer sees it; null for a server or another database. */
export function storeFile(config: Config): string | null {
  const uri = config.mlflow_tracking_uri;
  if (uri === undefined || uri === "") return join(config.home, "mlflow.db");
  if (uri.startsWith("sqlite:///")) {
    const path = uri.slice("sqlite://".length);
    return isAbsolute(path) ? path : null;
  }
  return null;
}

function identity(path: string): z.infer<typeof storeSchema> {
  const st = statSync(path, { bigint: true });
  return { path, size: Number(st.size), mtime_ns: st.mtimeNs.toString(), ino: st.ino.toString() };
}

function sealMatches(body: string, seal: string): boolean {
  const key = signingKey();
  if (key !== null) return seal.startsWith("hmac-sha256:") && signatureMatches(key, body, seal.slice("hmac-sha256:".length));
  return seal === `sha256:${createHash("sha256").update(body, "utf8").digest("hex")}`;
}

/** The cache when it can be trusted for this config's store, or why not (said in the fallback's log line). */
export function readRegistryCache(config: Config): CacheRead {
  const store = storeFile(config);
  if (store === null) return { ok: false, reason: "the tracking store is not a local SQLite file" };
  let text: string;
  try {
    text = readFileSync(join(config.home, CACHE_FILE), "utf8");
  } catch {
    return { ok: false, reason: `${CACHE_FILE} is missing` };
  }
  const lines = text.split("\n");
  const [body, seal] = [lines[0] ?? "", lines[1] ?? ""];
  if (lines.length !== 3 || lines[2] !== "" || !sealMatches(body, seal)) {
    return { ok: false, reason: `${CACHE_FILE} does not match its seal${signingKey() === null ? "" : ` (${KEY_ENV})`}: edited or corrupt` };
  }
  let parsed: ReturnType<typeof cacheSchema.safeParse>;
  try {
    parsed = cacheSchema.safeParse(JSON.parse(body));
  } catch {
    return { ok: false, reason: `${CACHE_FILE} is not JSON` };
  }
  if (!parsed.success) return { ok: false, reason: `${CACHE_FILE} has an unknown shape` };
  let current: z.infer<typeof storeSchema>;
  try {
    current = identity(realpathSync(store));
  } catch {
    return { ok: false, reason: `the tracking store ${store} does not exist` };
  }
  const recorded = parsed.data.store;
  if (recorded.path !== current.path) return { ok: false, reason: `${CACHE_FILE} describes another tracking store (${recorded.path})` };
  if (recorded.size !== current.size || recorded.mtime_ns !== current.mtime_ns || recorded.ino !== current.ino) {
    return { ok: false, reason: "the tracking store changed since the cache was written" };
  }
  return { ok: true, cache: parsed.data };
}
