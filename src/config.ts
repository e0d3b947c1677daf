import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { playbookSchema } from "./campaigns/playbook-schema.js";
import { ChurnopsError } from "./errors.js";

/** The repository root: two levels above this file both in src/ (tsx) and in dist/ (compiled). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const scoringSchema = z
  .object({
    chunk_size: z.number().int().min(1).max(1_000_000).default(65_536),
    bad_rows: z.enum(["quarantine", "fail"]).default("quarantine"),
    /** ONNX Runtime threads of the batch scorer's inference worker (0: one per core, ONNX Runtime's choice).
     * Inference is most of a batch's CPU; measured on 2 cores, 0 scored 1M rows at ~295k rows/s against ~255k
     * with 1 thread, the main thread's reading, validating and writing fitting beside it. */
    onnx_threads: z.number().int().min(0).max(64).default(0),
  })
  .default({ chunk_size: 65_536, bad_rows: "quarantine", onnx_threads: 0 });

/** How a campaign picks its customers; one rule at most (none = the model's operating decision). */
const campaignRuleSchema = z.object({
  min_band: z.string().min(1).optional(),
  threshold: z.number().min(0).max(1).optional(),
  top_pct: z.number().gt(0).max(100).optional(),
});

const deliverySchema = z
  .object({
    /** What `campaign send` and the daily job use when no flag names an adapter. */
    adapter: z.enum(["export", "webhook"]).default("export"),
    /** Folder for export files (default: <home>/exports). */
    export_dir: z.string().min(1).optional(),
    export_format: z.enum(["jsonl", "csv"]).default("jsonl"),
    webhook_url: z.string().url().optional(),
    /** Name of the environment variable holding the webhook credential (never the credential itself). */
    token_env: z.string().min(1).default("CHURNOPS_WEBHOOK_TOKEN"),
    auth_header: z.string().min(1).default("Authorization"),
    /** Put before the token in the header ("Bearer"); empty sends the token as is. */
    auth_scheme: z.string().default("Bearer"),
    timeout_ms: z.number().int().min(100).max(300_000).default(10_000),
    max_attempts: z.number().int().min(1).max(100).default(5),
    backoff_ms: z.number().int().min(0).max(600_000).default(500),
    max_backoff_ms: z.number().int().min(0).max(3_600_000).default(30_000),
    concurrency: z.number().int().min(1).max(256).default(4),
    lease_seconds: z.number().int().min(5).max(86_400).default(300),
  })
  .prefault({});

const campaignsSchema = z
  .object({
    control_share: z.number().gt(0).lt(1).default(0.1),
    cooldown_days: z.number().int().min(0).max(3650).default(30),
    /** Smallest absolute churn reduction worth detecting; sizes the "sample needed" advice of a report. */
    min_effect: z.number().gt(0).lt(1).default(0.02),
    delivery: deliverySchema,
    /** Offer playbooks by name (`campaign plan --playbook NAME`): reason rules to offers (src/campaigns/playbook.ts). */
    playbooks: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "a playbook name: letters, digits, '.', '_' and '-'"), playbookSchema).default({}),
  })
  .prefault({});

const dailyCampaignSchema = campaignRuleSchema.extend({
  /** The campaign of a day is named `<name>-<date>`. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/),
  budget: z.number().int().min(1).optional(),
  control_share: z.number().gt(0).lt(1).optional(),
  cooldown_days: z.number().int().min(0).max(3650).optional(),
  value_column: z.string().min(1).optional(),
  offer: z.string().min(1).optional(),
  offer_cost: z.number().min(0).optional(),
  offer_success: z.number().gt(0).max(1).optional(),
  seed: z.number().int().min(0).optional(),
  adapter: z.enum(["export", "webhook"]).optional(),
});

const dailySchema = z
  .object({
    /** The day's customer snapshot: a file or database URL; `{date}` is replaced by YYYY-MM-DD. */
    data: z.string().min(1).optional(),
    table: z.string().min(1).optional(),
    model: z.string().min(1).default("champion"),
    /** Day of the month whose run is the monthly one (with a risk review). */
    monthly_day: z.number().int().min(1).max(28).default(1),
    /** Snapshot column that marks marketing opt-outs (imported each day when present). */
    opt_out_column: z.string().min(1).default("opted_out"),
    review_top: z.number().int().min(1).max(1_000_000).default(100),
    lock_ttl_seconds: z.number().int().min(10).max(86_400).default(900),
    /** Keep a Parquet copy of each day's file snapshot under <home>/snapshots, so training sets outlive moved files. */
    keep_snapshots: z.boolean().default(true),
    campaigns: z.array(dailyCampaignSchema).default([]),
  })
  .prefault({});

/** The real-time API (`churnops serve`). API keys are secrets and come from the environment, never from here. */
const serverSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Model references: an alias, a registered version, or a bundle directory. */
    model: z.string().min(1).default("champion"),
    challenger: z.string().min(1).nullable().default(null),
    /** Share of customers (by a hash of their id) answered by the challenger; ignored in shadow mode. */
    challenger_share: z.number().min(0).max(1).default(0),
    /** The challenger scores every request too and is logged, but the champion always answers. */
    shadow: z.boolean().default(false),
    /** Mixed into the customer-id hash; change it to re-draw which customers see the challenger. */
    assignment_salt: z.string().default("churnops"),
    batch_limit: z.number().int().min(1).max(100_000).default(1000),
    body_limit_bytes: z
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** A request field the model does not know: refuse it (422) or ignore it. */
    unknown_fields: z.enum(["reject", "ignore"]).default("reject"),
    /** `disabled` serves without API keys; meant for a loopback-only development server. */
    auth: z.enum(["required", "disabled"]).default("required"),
    /** Requests per key per window; max 0 turns the limit off. */
    rate_limit: z.object({ max: z.number().int().min(0).default(60_000), window_ms: z.number().int().min(1).default(60_000) }).prefault({}),
    /** Predictions are written to the store in batches, off the request path. */
    prediction_log: z
      .object({
        enabled: z.boolean().default(true),
        flush_ms: z.number().int().min(1).default(250),
        flush_rows: z.number().int().min(1).default(500),
        /** Rows held (waiting or being written); beyond this, answers wait for the writer to make room (backpressure). */
        max_buffer: z.number().int().min(1).default(200_000),
        /** How long an answer waits for room in a full log before the request is refused with 503. */
        wait_ms: z.number().int().min(0).default(5_000),
      })
      .prefault({}),
    /** ONNX Runtime threads per model call; 1 suits many small concurrent requests, 0 lets ONNX Runtime choose. */
    onnx_threads: z.number().int().min(0).max(64).default(1),
    shutdown_timeout_ms: z.number().int().min(0).default(10_000),
    access_log: z.boolean().default(true),
  })
  .prefault({});

/** Monitoring: drift and performance thresholds, alerts, metrics, and the promotion gate (docs/monitoring.md). */
const monitoringSchema = z
  .object({
    drift: z
      .object({
        /** PSI at which a feature (or the score) is worth a look, and at which it has shifted. */
        psi_warn: z.number().gt(0).default(0.1),
        psi_alert: z.number().gt(0).default(0.25),
        /** A PSI counts only when its test (KS or chi-square) is significant at this level: small batches are noisy. */
        p_value: z.number().gt(0).lt(1).default(0.01),
        /** Share of a batch's rows quarantined by validation. */
        quarantine_warn: z.number().min(0).max(1).default(0.02),
        quarantine_alert: z.number().min(0).max(1).default(0.1),
      })
      .prefault({}),
    performance: z
      .object({
        /** Recall the model promises; null takes the serving model's bundle (thresholds.recall_target). */
        recall_target: z.number().gt(0).max(1).nullable().default(null),
        /** Alert when realised recall falls below the target minus this. */
        recall_tolerance: z.number().min(0).lt(1).default(0.05),
        /** Fewest labelled churners in a month before its recall is judged. */
        min_positives: z.number().int().min(1).default(30),
        /** An outcome observed within this many days after the score date labels the score. */
        horizon_days: z.number().int().min(1).max(3650).default(90),
        calibration_bins: z.number().int().min(2).max(100).default(10),
      })
      .prefault({}),
    /** Performance estimated from calibrated probabilities before labels arrive (docs/monitoring.md). */
    estimate: z
      .object({
        /** Estimates are trusted when the bundle's held-out ECE is at most this (or within its sampling noise). */
        max_ece: z.number().gt(0).lt(1).default(0.05),
        /** Fewest scored rows before an estimate is judged against the recall target. */
        min_rows: z.number().int().min(1).default(500),
        /** Simulated labellings for the 95% sampling band. */
        simulations: z.number().int().min(20).max(10_000).default(200),
        seed: z.number().int().min(0).default(20_201),
      })
      .prefault({}),
    alerts: z
      .object({
        /** Name of the environment variable holding the Slack-compatible webhook URL (unset: log and store only). */
        webhook_url_env: z.string().min(1).default("CHURNOPS_ALERT_WEBHOOK_URL"),
        timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
      })
      .prefault({}),
    gate: z
      .object({
        /** How much higher the challenger's precision (or recall, at equal precision) must be. */
        margin: z.number().min(0).lt(1).default(0.01),
        /** Most ROC AUC the challenger may lose against the champion. */
        auc_tolerance: z.number().min(0).lt(1).default(0.01),
        /** A model "meets the recall target" when the 95% upper bound of its holdout recall reaches target minus this. */
        recall_slack: z.number().min(0).lt(1).default(0),
        /** Fewest holdout churners a decision needs. */
        min_positives: z.number().int().min(1).default(50),
      })
      .prefault({}),
    retrain: z
      .object({
        /** Recent labelled customers (file; `{date}` is replaced by YYYY-MM-DD) for `retrain` and the daily job. */
        data: z.string().min(1).optional(),
        /** Share of the labelled rows kept out of training: champion and challenger are judged on them. */
        holdout_share: z.number().gt(0).lt(1).default(0.3),
        seed: z.number().int().min(0).default(42),
        /** Retrain in the daily job when a drift or performance alert fired since the last decision. */
        on_alert: z.boolean().default(true),
        /** Also retrain when the last decision is this many days old (0: no schedule). */
        every_days: z.number().int().min(0).max(3650).default(0),
        /** Without `data`: the label horizon of the point-in-time training set built from the store (`dataset build`). */
        horizon_days: z.number().int().min(1).max(3650).default(30),
        /** Without `data`: snapshots from this many days back make the rolling training window. */
        window_days: z.number().int().min(1).max(3650).default(180),
      })
      .prefault({}),
    /** Prometheus textfile written after batch runs (node_exporter's textfile collector); unset: none. */
    metrics_textfile: z.string().min(1).optional(),
  })
  .prefault({});

/** How long scores and predictions are kept (`churnops prune`; the daily job applies it when set). 0 keeps forever. */
const retentionSchema = z
  .object({
    daily_days: z.number().int().min(0).max(36_500).default(0),
    monthly_months: z.number().int().min(0).max(1200).default(0),
    predictions_days: z.number().int().min(0).max(36_500).default(0),
    /** Alerts are not acknowledged: one keeps the run it names for this many days after it was raised (0: never). */
    alert_open_days: z.number().int().min(0).max(3650).default(30),
  })
  .prefault({});

/** The web console that `churnops serve` mounts under /console/ (users: `churnops users`). */
const consoleSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** `auto` marks cookies Secure on HTTPS requests; `always` when a proxy in front terminates TLS. */
    secure_cookies: z.enum(["auto", "always"]).default("auto"),
    session_hours: z
      .number()
      .min(0.1)
      .max(24 * 30)
      .default(12),
    /** Sign-in attempts per client address per minute. */
    login_attempts_per_minute: z.number().int().min(1).max(1000).default(10),
  })
  .prefault({});

const configSchema = z.object({
  home: z.string().min(1),
  store_url: z.string().min(1),
  model_name: z.string().min(1).default("churn"),
  python: z.string().min(1),
  mlflow_tracking_uri: z.string().optional(),
  scoring: scoringSchema,
  server: serverSchema,
  campaigns: campaignsSchema,
  daily: dailySchema,
  monitoring: monitoringSchema,
  retention: retentionSchema,
  console: consoleSchema,
});

export type Config = z.infer<typeof configSchema>;
export type ScoringConfig = Config["scoring"];

/** How batch jobs load a model: inference in a worker thread (started by scoreBatch for more than one chunk), with the configured thread count. */
export function batchRuntime(config: Config): { inferenceWorker: "on-demand"; intraOpThreads?: number } {
  return config.scoring.onnx_threads > 0 ? { inferenceWorker: "on-demand", intraOpThreads: config.scoring.onnx_threads } : { inferenceWorker: "on-demand" };
}
export type ServerConfig = Config["server"];
export type CampaignsConfig = Config["campaigns"];
export type DeliveryConfig = CampaignsConfig["delivery"];
export type DailyConfig = Config["daily"];
export type DailyCampaignConfig = DailyConfig["campaigns"][number];
export type MonitoringConfig = Config["monitoring"];
export type ConsoleConfig = Config["console"];
export type RetentionConfig = Config["retention"];

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
