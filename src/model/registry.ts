import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { createLogger } from "../log.js";
import { type Band, type BundleJson, MAX_GRAPH_BYTES, MAX_JSON_BYTES, type RegisteredDigest, readBundle } from "./bundle.js";
import { type RegisteredVersion, readRegistryCache } from "./registry-cache.js";
import type { ChurnModel, RuntimeOptions } from "./runtime.js";
import { trainerJson } from "./trainer.js";

/** What `--model` may say: an alias, a registered version number, or a bundle directory. */
export type ModelRef = string;

export interface ResolvedBundle {
  modelName: string;
  version: string;
  bundlePath: string;
  aliases: string[];
  runId: string | null;
  /** What the registry recorded at publication; undefined for a bundle directory named by path. */
  registered?: RegisteredDigest;
}

interface TrainerResolve {
  model_name: string;
  version: string | number;
  bundle_path: string;
  aliases?: string[];
  run_id?: string | null;
  bundle_digest?: string | null;
  bundle_signature?: string | null;
}

const cache = new Map<string, ResolvedBundle>();
const VERSION = /^\d+$/;

/**
 * Find the bundle directory for a model reference. Aliases and versions go to the registry: MLflow's REST API
 * when the tracking URI is http(s); otherwise the registry cache the trainer keeps (milliseconds, no Python),
 * and the trainer's `resolve` when that cache is missing, stale or does not verify. Answers are memoised per
 * process; `fresh` skips the memo (the API's reload wants the current champion, not the one it started with).
 */
export interface ResolveOptions {
  fresh?: boolean;
  /** Largest artifact a remote MLflow may send for one bundle file (default: the bundle's own caps). */
  maxArtifactBytes?: number;
}

export async function resolveBundle(config: Config, ref: ModelRef, options: ResolveOptions = {}): Promise<ResolvedBundle> {
  if (existsSync(join(ref, "bundle.json"))) return { modelName: "", version: "", bundlePath: ref, aliases: [], runId: null };
  const key = `${config.model_name}:${ref}`;
  const hit = cache.get(key);
  if (hit !== undefined && options.fresh !== true) return hit;
  if (!VERSION.test(ref) && !/^[a-z][a-z0-9_-]*$/i.test(ref)) {
    throw new ChurnopsError("model_not_found", `--model ${ref}: not an alias, a version number, or a directory with a bundle.json`, { field: "model" });
  }
  const resolved =
    config.mlflow_tracking_uri?.startsWith("http") === true
      ? await resolveOverRest(config, config.mlflow_tracking_uri, ref, options.maxArtifactBytes)
      : (resolveFromCache(config, ref) ?? (await resolveWithTrainer(config, ref)));
  cache.set(key, resolved);
  return resolved;
}

function fromVersion(modelName: string, v: RegisteredVersion): ResolvedBundle {
  return {
    modelName,
    version: v.version,
    bundlePath: v.bundle_path,
    aliases: v.aliases,
    runId: v.run_id,
    registered: { digest: v.bundle_digest, signature: v.bundle_signature },
  };
}

/** The registry cache's answer, or null (with a log line saying why) when the trainer must be asked. */
function resolveFromCache(config: Config, ref: string): ResolvedBundle | null {
  const read = readRegistryCache(config);
  const fallBack = (reason: string): null => {
    createLogger({ component: "registry" }).info(
      { event: "registry.cache_fallback", model: config.model_name, ref, reason },
      `registry cache not used (${reason}); asking the trainer`,
    );
    return null;
  };
  if (!read.ok) return fallBack(read.reason);
  const model = read.cache.models[config.model_name];
  if (model === undefined) return fallBack(`it lists no model ${config.model_name}`);
  const number = VERSION.test(ref) ? ref : model.aliases[ref];
  const version = model.versions.find((v) => v.version === number);
  if (version === undefined) return fallBack(`it has no ${VERSION.test(ref) ? `version ${ref}` : `alias ${ref}`}`);
  if (!existsSync(join(version.bundle_path, "bundle.json"))) return fallBack(`the bundle of v${version.version} is not downloaded yet`);
  return fromVersion(config.model_name, version);
}

async function resolveWithTrainer(config: Config, ref: string): Promise<ResolvedBundle> {
  const args = ["resolve", "--model-name", config.model_name, ...(VERSION.test(ref) ? ["--version", ref] : ["--alias", ref])];
  const r = await trainerJson<TrainerResolve>(config, args);
  return {
    modelName: r.model_name,
    version: String(r.version),
    bundlePath: r.bundle_path,
    aliases: r.aliases ?? [],
    runId: r.run_id ?? null,
    registered: { digest: r.bundle_digest ?? null, signature: r.bundle_signature ?? null },
  };
}

/** Every registered version of the configured model, from the registry cache or, failing that, the trainer. */
export async function listVersions(config: Config): Promise<RegisteredVersion[]> {
  if (config.mlflow_tracking_uri?.startsWith("http") !== true) {
    const read = readRegistryCache(config);
    const model = read.ok ? read.cache.models[config.model_name] : undefined;
    if (model !== undefined) return model.versions;
  }
  return trainerJson<RegisteredVersion[]>(config, ["models", "--model-name", config.model_name]);
}

/** What the trainer answers to a promotion or a rollback. */
export interface ChampionChange {
  model_name?: string;
  version?: string;
  previous_champion?: string | null;
  replaced?: string;
}

/**
 * Make a version the champion (default: the current challenger) through the trainer, which owns MLflow's
 * aliases: what `churnops promote` and the console's models page both call. The memo is cleared so the next
 * resolve in this process sees the new champion.
 */
export async function promoteVersion(config: Config, options: { version?: string | undefined; force?: boolean } = {}): Promise<ChampionChange> {
  if (options.version !== undefined && !VERSION.test(options.version))
    throw new ChurnopsError("bad_input", `version ${JSON.stringify(options.version)}: expected a registered version number`, { field: "version" });
  const args = [
    "promote",
    "--model-name",
    config.model_name,
    ...(options.version === undefined ? [] : ["--version", options.version]),
    ...(options.force === true ? ["--force"] : []),
  ];
  const result = await trainerJson<ChampionChange>(config, args);
  clearResolveCache();
  return result;
}

/** Restore the champion the last promotion replaced (`churnops rollback`, the console's models page). */
export async function rollbackChampion(config: Config): Promise<ChampionChange> {
  const result = await trainerJson<ChampionChange>(config, ["rollback", "--model-name", config.model_name]);
  clearResolveCache();
  return result;
}

/**
 * The bundle.json of the registered model version that scored a run: the console reads its contributions'
 * baseline and reference profile to draw and word a customer's stored reasons. Versions are immutable, so each
 * is read once; a version that cannot be resolved (deleted, registry down, a run scored from a bundle folder
 * that was never registered) answers null and the caller shows what the store alone holds. That answer is kept
 * for a few minutes: asking may start the trainer, and pages must not wait seconds for it on every request.
 */
const UNRESOLVED_RETRY_MS = 5 * 60_000;

export function registeredBundleJson(config: Config): (run: { model_name: string; model_version: string }) => Promise<BundleJson | null> {
  const known = new Map<string, BundleJson>();
  const missing = new Map<string, number>();
  return async (run) => {
    const key = `${run.model_name}\u0000${run.model_version}`;
    const hit = known.get(key);
    if (hit !== undefined) return hit;
    if ((missing.get(key) ?? 0) > Date.now()) return null;
    try {
      const json = (await readBundle((await resolveBundle({ ...config, model_name: run.model_name }, run.model_version)).bundlePath)).json;
      known.set(key, json);
      missing.delete(key);
      return json;
    } catch (err) {
      missing.set(key, Date.now() + UNRESOLVED_RETRY_MS);
      createLogger({ component: "registry" }).warn(
        { err, event: "registry.bundle_unavailable", model_name: run.model_name, model_version: run.model_version },
        "bundle of a scored run unavailable",
      );
      return null;
    }
  };
}

/** The bands of the registered model version that scored a run (its bundle.json, through the registry). */
export function registeredBands(config: Config): (run: { model_name: string; model_version: string }) => Promise<readonly Band[]> {
  return async (run) => (await readBundle((await resolveBundle({ ...config, model_name: run.model_name }, run.model_version)).bundlePath)).json.bands;
}

/** A JSON answer of MLflow's REST API, read with a cap (a server may stream without end). */
const MAX_REST_BYTES = 1024 * 1024;

interface RestModelVersion {
  model_version?: { name?: unknown; version?: unknown; run_id?: unknown; aliases?: unknown; tags?: unknown };
}

/** Read a response body up to `max` bytes into memory, or stream it into `file`; more than `max` is refused. */
async function readCapped(res: Response, max: number, what: string, file?: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > max) throw new ChurnopsError("bundle_invalid", `${what}: the server announces ${declared} bytes, more than the ${max} allowed`);
  const chunks: Uint8Array[] = [];
  const handle = file === undefined ? null : await open(file, "wx");
  let total = 0;
  try {
    if (res.body !== null) {
      for await (const chunk of res.body) {
        total += chunk.byteLength;
        if (total > max) throw new ChurnopsError("bundle_invalid", `${what}: more than the ${max} bytes allowed; download stopped`);
        if (handle === null) chunks.push(chunk);
        else await handle.write(chunk);
      }
    }
  } finally {
    await handle?.close();
    if (total > max) await res.body?.cancel().catch(() => undefined);
  }
  return handle === null ? Buffer.concat(chunks) : new Uint8Array(0);
}

function restTags(tags: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(tags)) {
    for (const t of tags as { key?: unknown; value?: unknown }[]) if (typeof t.key === "string" && typeof t.value === "string") out[t.key] = t.value;
  }
  return out;
}

/**
 * Resolve through a remote MLflow server and download the run's `bundle/` artifacts into the local cache. The
 * server is not trusted: its version must be a number and its run id a plain token (they become a path), each
 * artifact streams to disk under a size cap, and the bundle is verified (digest, graph, golden vectors) in a
 * staging folder before it is renamed into the cache.
 */
async function resolveOverRest(config: Config, base: string, ref: string, maxArtifactBytes?: number): Promise<ResolvedBundle> {
  const root = base.replace(/\/+$/, "");
  const name = encodeURIComponent(config.model_name);
  const url = VERSION.test(ref)
    ? `${root}/api/2.0/mlflow/model-versions/get?name=${name}&version=${ref}`
    : `${root}/api/2.0/mlflow/registered-models/alias?name=${name}&alias=${encodeURIComponent(ref)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  if (res.status === 404 || res.status === 400)
    throw new ChurnopsError("model_not_found", `model ${config.model_name} has no ${VERSION.test(ref) ? `version ${ref}` : `alias ${ref}`} in ${root}`);
  if (!res.ok) throw new ChurnopsError("model_not_found", `MLflow at ${root} answered ${res.status} for ${ref}`);
  let body: RestModelVersion;
  try {
    body = JSON.parse(new TextDecoder().decode(await readCapped(res, MAX_REST_BYTES, `MLflow at ${root}`))) as RestModelVersion;
  } catch (err) {
    if (err instanceof ChurnopsError) throw err;
    throw new ChurnopsError("model_not_found", `MLflow at ${root} answered something that is not JSON for ${ref}`);
  }
  const mv = body.model_version;
  if (mv === undefined) throw new ChurnopsError("model_not_found", `MLflow at ${root} returned no model version for ${ref}`);
  const version = typeof mv.version === "string" || typeof mv.version === "number" ? String(mv.version) : "";
  if (!VERSION.test(version))
    throw new ChurnopsError("bundle_invalid", `MLflow at ${root} answered version ${JSON.stringify(mv.version)}, which is not a version number`);
  const runId = typeof mv.run_id === "string" ? mv.run_id : "";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(runId))
    throw new ChurnopsError("bundle_invalid", `MLflow at ${root} answered run id ${JSON.stringify(mv.run_id)}, which is not a run id`);
  const tags = restTags(mv.tags);
  const registered: RegisteredDigest = { digest: tags.bundle_digest ?? null, signature: tags.bundle_signature ?? null };
  const parent = join(config.home, "bundles", config.model_name);
  const dir = join(parent, `v${version}`);
  if (!existsSync(join(dir, "bundle.json"))) {
    await mkdir(parent, { recursive: true });
    const staging = await mkdtemp(join(parent, `.partial-v${version}-`));
    try {
      for (const [file, max] of [
        ["model.onnx", MAX_GRAPH_BYTES],
        ["bundle.json", MAX_JSON_BYTES],
      ] as const) {
        const art = await fetch(`${root}/get-artifact?path=${encodeURIComponent(`bundle/${file}`)}&run_uuid=${encodeURIComponent(runId)}`, {
          signal: AbortSignal.timeout(60_000),
        });
        if (!art.ok) throw new ChurnopsError("model_not_found", `cannot download bundle/${file} of run ${runId} from ${root} (HTTP ${art.status})`);
        await readCapped(art, Math.min(max, maxArtifactBytes ?? max), `bundle/${file} of run ${runId} from ${root}`, join(staging, file));
      }
      // Loaded here only: commands that merely resolve (drift, models) do not pay for ONNX Runtime.
      const { ChurnModel } = await import("./runtime.js");
      await (await ChurnModel.load(staging, { registered })).close();
      if (!existsSync(join(dir, "bundle.json"))) await rename(staging, dir);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  const aliases = Array.isArray(mv.aliases) ? mv.aliases.filter((a): a is string => typeof a === "string") : [];
  return { modelName: typeof mv.name === "string" ? mv.name : config.model_name, version, bundlePath: dir, aliases, runId, registered };
}

/** Resolve and load in one step: the model is verified (digest, graph, sha256, golden vectors) before it is returned. */
export async function loadModel(config: Config, ref: ModelRef, options: RuntimeOptions & { fresh?: boolean } = {}): Promise<ChurnModel> {
  const resolved = await resolveBundle(config, ref, options);
  const { ChurnModel } = await import("./runtime.js");
  return ChurnModel.load(resolved.bundlePath, { ...options, ...(resolved.registered === undefined ? {} : { registered: resolved.registered }) });
}

export function clearResolveCache(): void {
  cache.clear();
}
