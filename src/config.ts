import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { ChurnopsError } from "./errors.js";

/** The repository root: two levels above this file both in src/ (tsx) and in dist/ (compiled). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const scoringSchema = z
  .object({
    chunk_size: z.number().int().min(1).max(1_000_000).default(65_536),
    bad_rows: z.enum(["quarantine", "fail"]).default("quarantine"),
  })
  .default({ chunk_size: 65_536, bad_rows: "quarantine" });

const configSchema = z.object({
  home: z.string().min(1),
  store_url: z.string().min(1),
  model_name: z.string().min(1).default("churn"),
  python: z.string().min(1),
  mlflow_tracking_uri: z.string().optional(),
  scoring: scoringSchema,
});

export type Config = z.infer<typeof configSchema>;
export type ScoringConfig = Config["scoring"];

export interface ConfigSources {
  /** Path of a TOML file; default `churnops.toml` in the working directory when it exists. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * One typed config, read once at start: defaults < TOML file < environment.
 * Relative paths are resolved against the working directory so every process agrees.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const filePath = sources.file ?? env.CHURNOPS_CONFIG ?? (existsSync(join(cwd, "churnops.toml")) ? join(cwd, "churnops.toml") : undefined);
  let fromFile: Record<string, unknown> = {};
  if (filePath !== undefined) {
    const abs = isAbsolute(filePath) ? filePath : join(cwd, filePath);
    if (!existsSync(abs)) throw new ChurnopsError("bad_config", `config file ${abs} does not exist`);
    try {
      fromFile = parseToml(readFileSync(abs, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new ChurnopsError("bad_config", `config file ${abs} is not valid TOML: ${(err as Error).message}`);
    }
  }
  const home = resolve(cwd, env.CHURNOPS_HOME ?? (fromFile.home as string | undefined) ?? ".churnops");
  const merged = {
    ...fromFile,
    home,
    store_url: env.CHURNOPS_DB_URL ?? fromFile.store_url ?? `sqlite://${join(home, "churnops.db")}`,
    model_name: env.CHURNOPS_MODEL_NAME ?? fromFile.model_name,
    python: env.CHURNOPS_PYTHON ?? fromFile.python ?? join(PROJECT_ROOT, "trainer", ".venv", "bin", "python"),
    mlflow_tracking_uri: env.MLFLOW_TRACKING_URI ?? fromFile.mlflow_tracking_uri,
  };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw new ChurnopsError("bad_config", `config: ${path}: ${issue?.message ?? "invalid"}`, { field: path });
  }
  return parsed.data;
}
