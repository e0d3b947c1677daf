import type { Config } from "../config.js";
import { FeatureBatchBuilder, type FeatureValue } from "../model/features.js";
import { ReasonWriter } from "../model/reasons.js";
import { loadModel } from "../model/registry.js";
import type { ChurnModel } from "../model/runtime.js";
import { InferenceQueue, type Scored } from "./inference-queue.js";

export type { Scored } from "./inference-queue.js";

import { CustomerValidator } from "./validation.js";

export type Variant = "champion" | "challenger";

export type FeatureRow = Readonly<Record<string, FeatureValue>>;

/**
 * A verified model as the API serves it: the model, the request validator built from its schema, and a scorer
 * whose ONNX calls are ordered by an InferenceQueue (small requests of one event-loop turn share a call; large
 * ones go chunk by chunk, so they cannot starve the small ones).
 */
export class ServedModel {
  readonly validator: CustomerValidator;
  /** Reason texts per language, built once per model (null when the bundle has no contributions). */
  readonly reasons: { en: ReasonWriter; ja: ReasonWriter } | null;
  /** Plain predictions, and explained ones (same trees, one more output): each its own fair queue. */
  private readonly plain: InferenceQueue<FeatureRow>;
  private readonly explaining: InferenceQueue<FeatureRow>;

  constructor(
    readonly model: ChurnModel,
    readonly variant: Variant,
    unknownFields: "reject" | "ignore",
  ) {
    this.validator = new CustomerValidator(model.bundle, unknownFields);
    this.reasons = model.explains ? { en: new ReasonWriter(model.bundle, "en"), ja: new ReasonWriter(model.bundle, "ja") } : null;
    const { features, missing_token } = model.bundle.schema;
    const batchOf = (rows: readonly FeatureRow[]) => {
      const builder = new FeatureBatchBuilder(features, missing_token);
      for (const row of rows) builder.push(row);
      return builder.build();
    };
    this.plain = new InferenceQueue(async (rows) => ({ probabilities: await model.predict(batchOf(rows)), contributions: null }));
    this.explaining = new InferenceQueue(async (rows) => {
      const e = await model.explain(batchOf(rows));
      return { probabilities: e.probabilities, contributions: e.contributions };
    });
  }

  get ref(): { name: string; version: string } {
    return { name: this.model.name, version: this.model.version };
  }

  /**
   * Churn probabilities of `rows`, in order, and their contributions (row-major) when `explain` and the bundle
   * has them; batches cannot starve single requests (see InferenceQueue).
   */
  score(rows: readonly FeatureRow[], explain = false): Promise<Scored> {
    return (explain && this.model.explains ? this.explaining : this.plain).score(rows);
  }
}

export interface ModelPair {
  champion: ChurnModel;
  challenger: ChurnModel | null;
}

/** The models one request uses from start to end, whatever a reload does meanwhile. */
export interface Lease {
  champion: ServedModel;
  challenger: ServedModel | null;
  release(): void;
}

class Generation {
  leases = 0;
  retired = false;
  private closing: Promise<void> | null = null;
  private onClosed: (() => void) | null = null;
  readonly closed: Promise<void>;

  constructor(
    readonly champion: ServedModel,
    readonly challenger: ServedModel | null,
  ) {
    this.closed = new Promise((resolve) => {
      this.onClosed = resolve;
    });
  }

  /** Release the ONNX sessions once retired and no request holds a lease any more. */
  maybeClose(keep: ReadonlySet<ChurnModel>): void {
    if (!this.retired || this.leases > 0 || this.closing !== null) return;
    const models = [this.champion.model, this.challenger?.model].filter((m): m is ChurnModel => m !== undefined && !keep.has(m));
    this.closing = Promise.allSettled(models.map((m) => m.close())).then(() => this.onClosed?.());
  }
}

/**
 * Holds the serving models and swaps them atomically. A request takes a lease on the current generation;
 * a swap retires that generation, whose sessions are closed only when its last lease is released, so requests in
 * flight finish on the model they started with.
 */
export class ModelHolder {
  private gen: Generation;
  private shut = false;

  constructor(
    pair: ModelPair,
    private readonly unknownFields: "reject" | "ignore",
  ) {
    this.gen = this.generation(pair);
  }

  private generation(pair: ModelPair): Generation {
    return new Generation(
      new ServedModel(pair.champion, "champion", this.unknownFields),
      pair.challenger === null ? null : new ServedModel(pair.challenger, "challenger", this.unknownFields),
    );
  }

  acquire(): Lease {
    const gen = this.gen;
    gen.leases++;
    let released = false;
    return {
      champion: gen.champion,
      challenger: gen.challenger,
      release: () => {
        if (released) return;
        released = true;
        gen.leases--;
        gen.maybeClose(this.liveModels());
      },
    };
  }

  /** The serving models, for read-only answers (model info) that do not score. */
  get champion(): ServedModel {
    return this.gen.champion;
  }

  get challenger(): ServedModel | null {
    return this.gen.challenger;
  }

  /** Serve `pair` from now on; the previous generation closes when its in-flight requests are done. */
  swap(pair: ModelPair): void {
    const old = this.gen;
    this.gen = this.generation(pair);
    old.retired = true;
    old.maybeClose(this.liveModels());
  }

  /** Retire the current generation and wait until its last request has finished and its sessions are closed. */
  async close(): Promise<void> {
    const gen = this.gen;
    this.shut = true;
    gen.retired = true;
    gen.maybeClose(this.liveModels());
    await gen.closed;
  }

  private liveModels(): ReadonlySet<ChurnModel> {
    if (this.shut) return new Set();
    const live = new Set<ChurnModel>([this.gen.champion.model]);
    if (this.gen.challenger !== null) live.add(this.gen.challenger.model);
    return live;
  }
}

export interface ModelRefs {
  champion: string;
  challenger: string | null;
}

/**
 * Resolve and verify both models (sha256 + golden vectors). If either fails, nothing is kept: the one that did
 * load is closed again, and the error says which reference failed.
 */
export async function loadPair(config: Config, refs: ModelRefs, options: { fresh: boolean }): Promise<ModelPair> {
  const runtime = { fresh: options.fresh, ...(config.server.onnx_threads > 0 ? { intraOpThreads: config.server.onnx_threads } : {}) };
  const champion = await loadModel(config, refs.champion, runtime);
  if (refs.challenger === null) return { champion, challenger: null };
  try {
    return { champion, challenger: await loadModel(config, refs.challenger, runtime) };
  } catch (err) {
    await champion.close();
    throw err;
  }
}
