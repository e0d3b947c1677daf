import type { ServerConfig } from "../config.js";
import type { Logger } from "../log.js";
import type { ApiKeys } from "./auth.js";
import type { ServerMetrics } from "./metrics.js";
import type { ModelHolder, ModelPair, ServedModel } from "./models.js";
import type { PredictionLog } from "./prediction-log.js";
import type { Routing } from "./variants.js";

/** Where the routes of one server find what they need; built once by `buildApp`. */
export interface ServerContext {
  config: ServerConfig;
  models: ModelHolder;
  routing: Routing;
  metrics: ServerMetrics;
  predictionLog: PredictionLog | null;
  keys: ApiKeys | null;
  log: Logger;
  reloader: Reloader;
}

export interface ReloadResult {
  champion: { name: string; version: string; previous: { name: string; version: string } };
  challenger: { name: string; version: string } | null;
  duration_ms: number;
}

/**
 * Loads and verifies fresh models, then swaps them in. Reloads run one after another (a second request waits for
 * the first, then loads again: it may have been sent because of a newer promotion). A model that fails to load or
 * verify is refused and the serving models stay.
 */
export class Reloader {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly models: ModelHolder,
    private readonly loader: (() => Promise<ModelPair>) | null,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.loader !== null;
  }

  reload(): Promise<ReloadResult> {
    const run = this.queue.then(
      () => this.once(),
      () => this.once(),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async once(): Promise<ReloadResult> {
    if (this.loader === null) throw new Error("no model loader configured");
    const started = performance.now();
    const previous = this.models.champion.ref;
    let pair: ModelPair;
    try {
      pair = await this.loader();
    } catch (err) {
      this.metrics.reloads.inc({ outcome: "refused" });
      this.log.error({ event: "model.reload_refused", err, serving: previous }, "model reload refused; the current model keeps serving");
      throw err;
    }
    this.models.swap(pair);
    publishModels(this.metrics, this.models.champion, this.models.challenger);
    this.metrics.reloads.inc({ outcome: "swapped" });
    const result: ReloadResult = {
      champion: { ...this.models.champion.ref, previous },
      challenger: this.models.challenger?.ref ?? null,
      duration_ms: Math.round(performance.now() - started),
    };
    this.log.info({ event: "model.reloaded", ...result }, "models reloaded");
    return result;
  }
}

export function publishModels(metrics: ServerMetrics, champion: ServedModel, challenger: ServedModel | null): void {
  metrics.setModels([champion, ...(challenger === null ? [] : [challenger])].map((m) => ({ variant: m.variant, ...m.ref })));
}
