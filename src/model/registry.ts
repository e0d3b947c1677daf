import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { ChurnModel, type RuntimeOptions } from "./runtime.js";
import { trainerJson } from "./trainer.js";

/** What `--model` may say: an alias, a registered version number, or a bundle directory. */
export type ModelRef = string;

export interface ResolvedBundle {
  modelName: string;
  version: string;
  bundlePath: string;
  aliases: string[];
  runId: string | null;
}

interface TrainerResolve {
  model_name: string;
  version: string | number;
  bundle_path: string;
  aliases?: string[];
  run_id?: string | null;
}

const cache = new Map<string, ResolvedBundle>();

/**
 * Find the bundle directory for a model reference. Aliases and versions go to the registry: MLflow's REST API
 * when the tracking URI is http(s), the trainer's `resolve` command otherwise. Answers are cached per process;
 * `fresh` skips the cache (the API's reload wants the current champion, not the one it started with).
 */
export async function resolveBundle(config: Config, ref: ModelRef, options: { fresh?: boolean } = {}): Promise<ResolvedBundle> {
  if (existsSync(join(ref, "bundle.json"))) return { modelName: "", version: "", bundlePath: ref, aliases: [], runId: null };
  const key = `${config.model_name}:${ref}`;
  const hit = cache.get(key);
  if (hit !== undefined && options.fresh !== true) return hit;
  let resolved: ResolvedBundle;
  if (/^\d+$/.test(ref) || /^[a-z][a-z0-9_-]*$/i.test(ref)) {
    resolved =
      config.mlflow_tracking_uri?.startsWith("http") === true
        ? await resolveOverRest(config, config.mlflow_tracking_uri, ref)
        : await resolveWithTrainer(config, ref);
  } else {
    throw new ChurnopsError("model_not_found", `--model ${ref}: not an alias, a version number, or a directory with a bundle.json`, { field: "model" });
  }
  cache.set(key, resolved);
  return resolved;
}

async function resolveWithTrainer(config: Config, ref: string): Promise<ResolvedBundle> {
  const args = ["resolve", "--model-name", config.model_name, ...(/^\d+$/.test(ref) ? ["--version", ref] : ["--alias", ref])];
  const r = await trainerJson<TrainerResolve>(config, args);
  return { modelName: r.model_name, version: String(r.version), bundlePath: r.bundle_path, aliases: r.aliases ?? [], runId: r.run_id ?? null };
}

interface RestModelVersion {
  model_version?: { name: string; version: string; run_id: string; aliases?: string[] };
}

/** Resolve through a remote MLflow server and download the run's `bundle/` artifacts into the local cache. */
async function resolveOverRest(config: Config, base: string, ref: string): Promise<ResolvedBundle> {
  const root = base.replace(/\/+$/, "");
  const name = encodeURIComponent(config.model_name);
  const url = /^\d+$/.test(ref)
    ? `${root}/api/2.0/mlflow/model-versions/get?name=${name}&version=${ref}`
    : `${root}/api/2.0/mlflow/registered-models/alias?name=${name}&alias=${encodeURIComponent(ref)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  if (res.status === 404 || res.status === 400)
    throw new ChurnopsError("model_not_found", `model ${config.model_name} has no ${/^\d+$/.test(ref) ? `version ${ref}` : `alias ${ref}`} in ${root}`);
  if (!res.ok) throw new ChurnopsError("model_not_found", `MLflow at ${root} answered ${res.status} for ${ref}`);
  const body = (await res.json()) as RestModelVersion;
  const mv = body.model_version;
  if (mv === undefined) throw new ChurnopsError("model_not_found", `MLflow at ${root} returned no model version for ${ref}`);
  const dir = join(config.home, "bundles", config.model_name, `v${mv.version}`);
  if (!existsSync(join(dir, "bundle.json"))) {
    const tmp = `${dir}.partial-${process.pid}`;
    await mkdir(tmp, { recursive: true });
    for (const file of ["model.onnx", "bundle.json"]) {
      const art = await fetch(`${root}/get-artifact?path=${encodeURIComponent(`bundle/${file}`)}&run_uuid=${encodeURIComponent(mv.run_id)}`, {
        signal: AbortSignal.timeout(60_000),
      });
      if (!art.ok) throw new ChurnopsError("model_not_found", `cannot download bundle/${file} of run ${mv.run_id} from ${root} (HTTP ${art.status})`);
      await writeFile(join(tmp, file), new Uint8Array(await art.arrayBuffer()));
    }
    await mkdir(join(config.home, "bundles", config.model_name), { recursive: true });
    if (!existsSync(join(dir, "bundle.json"))) await rename(tmp, dir);
  }
  return { modelName: mv.name, version: mv.version, bundlePath: dir, aliases: mv.aliases ?? [], runId: mv.run_id };
}

/** Resolve and load in one step: the model is verified (sha256 + golden vectors) before it is returned. */
export async function loadModel(config: Config, ref: ModelRef, options: RuntimeOptions & { fresh?: boolean } = {}): Promise<ChurnModel> {
  const resolved = await resolveBundle(config, ref, options);
  return ChurnModel.load(resolved.bundlePath, options);
}

export function clearResolveCache(): void {
  cache.clear();
}
