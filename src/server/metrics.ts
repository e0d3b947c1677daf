import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { PredictionLogHooks } from "./prediction-log.js";

/** Prometheus metrics of one server, in its own registry (never prom-client's global one). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "method" | "status">;
  readonly latency: Histogram<"route" | "method" | "status">;
  readonly predictions: Counter<"band" | "model_version" | "variant" | "shadow">;
  readonly modelInfo: Gauge<"variant" | "name" | "version">;
  readonly reloads: Counter<"outcome">;
  readonly shadowSkipped: Counter;
  readonly logWritten: Counter;
  readonly logDropped: Counter;
  readonly logBuffered: Gauge;
  readonly logWriteFailures: Counter;
  readonly logRejected: Counter;
  readonly logRefused: Counter;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "churnops_" });
    this.requests = new Counter({ name: "churnops_http_requests_total", help: "HTTP requests answered", labelNames: ["route", "method", "status"], registers });
    this.latency = new Histogram({
      name: "churnops_http_request_duration_seconds",
      help: "Time from request received to response sent",
      labelNames: ["route", "method", "status"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.predictions = new Counter({
      name: "churnops_predictions_total",
      help: "Customers scored, by risk band, model version and variant (shadow=1: logged, not answered)",
      labelNames: ["band", "model_version", "variant", "shadow"],
      registers,
    });
    this.modelInfo = new Gauge({
      name: "churnops_model_info",
      help: "The models being served (value 1)",
      labelNames: ["variant", "name", "version"],
      registers,
    });
    this.reloads = new Counter({ name: "churnops_model_reloads_total", help: "Model reloads by outcome", labelNames: ["outcome"], registers });
    this.shadowSkipped = new Counter({
      name: "churnops_shadow_skipped_total",
      help: "Customers the shadow challenger could not score (its schema refused them, or it failed)",
      registers,
    });
    this.logWritten = new Counter({ name: "churnops_prediction_log_written_total", help: "Predictions written to the store", registers });
    this.logDropped = new Counter({ name: "churnops_prediction_log_dropped_total", help: "Predictions the store never took", registers });
    this.logBuffered = new Gauge({ name: "churnops_prediction_log_buffered", help: "Predictions waiting to be written", registers });
    this.logRefused = new Counter({
      name: "churnops_prediction_log_refused_total",
      help: "Predictions not answered (503) because the prediction log stayed full (never accepted, so never lost)",
      registers,
    });
    this.logRejected = new Counter({
      name: "churnops_prediction_log_rejected_total",
      help: "Predictions the store refused row by row while it took the others (set aside and logged)",
      registers,
    });
    this.logWriteFailures = new Counter({
      name: "churnops_prediction_log_write_failures_total",
      help: "Prediction-log writes that failed (their rows are kept and written again)",
      registers,
    });
  }

  /** Publish which models serve now (replacing the previous set after a reload). */
  setModels(models: readonly { variant: string; name: string; version: string }[]): void {
    this.modelInfo.reset();
    for (const m of models) this.modelInfo.set({ variant: m.variant, name: m.name, version: m.version }, 1);
  }

  get predictionLogHooks(): PredictionLogHooks {
    return {
      written: (n) => this.logWritten.inc(n),
      dropped: (n) => this.logDropped.inc(n),
      buffered: (n) => this.logBuffered.set(n),
      failed: () => this.logWriteFailures.inc(),
      rejected: (n) => this.logRejected.inc(n),
      refused: (n) => this.logRefused.inc(n),
    };
  }
}
