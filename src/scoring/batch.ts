import type { Logger } from "pino";
import type { ColumnHints, ColumnValues } from "../data/columns.js";
import { idAt } from "../data/ids.js";
import { identityText, inputIdentity } from "../data/input-identity.js";
import { type CustomerSource, openSource, type RawChunk, type SourceSpec } from "../data/source.js";
import { type ChunkValidation, describeViolations, RowValidator, unstorableId } from "../data/validate.js";
import { ChurnopsError } from "../errors.js";
import type { BatchReasons } from "../model/batch-reasons.js";
import type { Band } from "../model/bundle.js";
import type { FeatureBatch } from "../model/features.js";
import type { Language } from "../model/reasons.js";
import type { ChurnModel } from "../model/runtime.js";
import { BatchProfiler, binScores, type RunProfile } from "../monitoring/drift.js";
import type { Store } from "../store/db.js";
import {
  bandCounts,
  finishRun,
  getRun,
  iterateScores,
  type QuarantineRow,
  runProfile,
  type ScoreColumns,
  type ScoreRun,
  scoredCustomerIds,
  startOrResumeRun,
  writeChunk,
} from "../store/runs.js";
import { encodeFeatures, keptFeatures, storedCategoricalFeatures } from "../store/score-features.js";
import { type ChunkWriter, ScoreWriter } from "../store/score-writer-client.js";
import { checkOutput, codeScores, ScoreFileSink } from "./file-sink.js";
import { ScoreFileWriter } from "./file-sink-client.js";
import { fingerprintPrefix, IdFingerprint } from "./id-fingerprint.js";

export interface BatchOptions {
  source: SourceSpec;
  model: ChurnModel;
  kind: "daily" | "monthly";
  /** YYYY-MM-DD */
  asOf: string;
  /** Where scores go; null = file only (then `out` is required and the run is not resumable). */
  store: Store | null;
  out?: string | undefined;
  chunkSize: number;
  badRows: "quarantine" | "fail";
  /** Replace the run's scores (another input, or the same again) instead of resuming or calling it complete. */
  rerun?: boolean | undefined;
  log?: Logger | undefined;
  onProgress?: ((progress: BatchProgress) => void) | undefined;
  /** Top reasons per score (`--reasons N`): reason_1..N columns in the file, and stored with each score. */
  reasons?: number | undefined;
  language?: Language | undefined;
}

export interface BatchProgress {
  rowsDone: number;
  rowsScored: number;
  rowsQuarantined: number;
}

export interface BatchSummary {
  runId: string;
  /** `already_complete`: this kind and date were scored before by this model; nothing was redone. */
  status: "complete" | "already_complete";
  kind: "daily" | "monthly";
  asOf: string;
  modelName: string;
  modelVersion: string;
  source: string;
  rowsRead: number;
  rowsScored: number;
  rowsQuarantined: number;
  /** Rows a previous, interrupted invocation had already committed. */
  resumedFrom: number;
  bands: Record<string, number>;
  /** The model's bands with their lower cut-offs, highest first, and the operating threshold that flags a churner. */
  bandCutoffs: readonly Band[];
  operatingThreshold: number;
  durationMs: number;
  rowsPerSecond: number;
  out: string | null;
}

interface ChunkResult {
  scores: ScoreColumns;
  quarantine: QuarantineRow[];
}

/**
 * Score a whole customer table through one verified model, chunk by chunk. With a store, every chunk's
 * scores, quarantined rows and the checkpoint commit together, so a re-run adds nothing and a killed run
 * resumes where it stopped.
 */
export async function scoreBatch(options: BatchOptions): Promise<BatchSummary> {
  const started = performance.now();
  const { model, store } = options;
  if (store === null && options.out === undefined)
    throw new ChurnopsError("bad_input", "nothing to write to: give --out FILE or use the store", { field: "out" });
  // Refuse a bad output path before any work, not after scoring a whole table.
  if (options.out !== undefined) checkOutput(options.out);
  const reasons = reasonRunFor(options, store !== null);
  /** Reason columns in an --out file: reason_1..N and their texts. */
  const reasonColumns = reasons === null ? 0 : (options.reasons ?? 0);
  const source = await openSource(options.source);
  let writer: ChunkWriter | null = null;
  let fileSink: ScoreFile | null = null;
  try {
    const idColumn = model.bundle.schema.id_column;
    const features = model.bundle.schema.features.map((f) => f.name);
    const wanted = idColumn === null || features.includes(idColumn) ? features : [idColumn, ...features];
    const runId = store === null ? `${options.kind}-${options.asOf}-${model.name}-v${model.version}` : undefined;
    const run =
      store === null
        ? null
        : await startOrResumeRun(store, {
            kind: options.kind,
            asOf: options.asOf,
            modelName: model.name,
            modelVersion: model.version,
            source: source.description,
            input: identityText(inputIdentity(options.source, source.description)),
            rerun: options.rerun,
          });
    // A re-run of a complete run scores under its own id and takes the original's once it completes.
    let id = run?.run_id ?? (runId as string);
    if (run !== null && store !== null && run.status === "complete") {
      options.log?.info({ event: "score.already_complete", run_id: id }, "run already complete; nothing to do");
      if (options.out !== undefined) await exportRun(store, id, options.out, reasonColumns);
      return {
        ...summaryBase(options, id, run.source),
        status: "already_complete",
        rowsRead: run.rows_read,
        rowsScored: run.rows_scored,
        rowsQuarantined: run.rows_quarantined,
        resumedFrom: run.checkpoint_rows,
        bands: await bandCounts(store, id),
        durationMs: performance.now() - started,
        rowsPerSecond: 0,
        out: options.out ?? null,
      };
    }
    const resumedFrom = run?.checkpoint_rows ?? 0;
    if (resumedFrom > 0) options.log?.info({ event: "score.resume", run_id: id, from_row: resumedFrom }, "resuming an interrupted run");

    const validator = new RowValidator(model.bundle);
    // The file is written while scoring, on its own thread, beside the store or without one. Only a resumed run
    // exports its scores at the end: the rows of the interrupted invocation are in the store, not in this file.
    const exportAtEnd = store !== null && options.out !== undefined && resumedFrom > 0;
    // Threads pay off only over several chunks: each one's start-up (a module graph, a connection or a session)
    // is most of a one-chunk run. An input known to fit in one chunk is scored, written and filed on this thread.
    const rows = await source.knownRows();
    const threads = rows === null || rows - resumedFrom > options.chunkSize;
    // The threads start while DuckDB looks for duplicated ids; on a big table each takes a moment.
    const [scanned, writerStart, sinkStart, inferenceStart] = await Promise.allSettled([
      idColumn === null ? Promise.resolve(new Set<string>()) : source.duplicates(idColumn),
      store === null || !threads ? Promise.resolve(null) : ScoreWriter.forStore(store),
      options.out === undefined || exportAtEnd
        ? Promise.resolve(null)
        : threads
          ? ScoreFileWriter.open(options.out, reasonColumns)
          : InThreadFile.open(options.out, reasonColumns),
      threads ? model.startWorker() : Promise.resolve(),
    ]);
    if (writerStart.status === "fulfilled") writer = writerStart.value;
    if (sinkStart.status === "fulfilled") fileSink = sinkStart.value;
    if (scanned.status === "rejected") throw scanned.reason;
    for (const started of [writerStart, sinkStart, inferenceStart]) if (started.status === "rejected") throw started.reason;
    const duplicates = scanned.value;
    const storedFeatures = storedCategoricalFeatures(model.bundle);
    const firstSeen = await seedDuplicates(store, id, duplicates);
    // With a writer thread, chunk k commits there while this thread goes on with chunk k+1. The thread commits in
    // order; one commit is awaited one chunk behind, so memory stays bounded and a failed commit stops the run.
    let committing: Promise<Error | null> = Promise.resolve(null);
    const commitBehind = async (write: Promise<void>): Promise<void> => {
      const previous = committing;
      committing = write.then(
        () => null,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      );
      const failed = await previous;
      if (failed !== null) throw failed;
    };
    let rowsScored = run?.rows_scored ?? 0;
    let rowsQuarantined = run?.rows_quarantined ?? 0;
    let rowsDone = resumedFrom;
    const bandTally: Record<string, number> = {};
    // What the run remembers of its input: the ids' fingerprint and the drift profile, both continued on resume.
    let fingerprint: IdFingerprint | null = null;
    let drift: RunDrift | null = null;
    try {
      if (run !== null && store !== null) {
        fingerprint = await checkResumedInput(source, run, idColumn, options.chunkSize);
        drift = await startDrift(store, run, model);
      }
      // Two chunks in flight: ONNX Runtime scores chunk k on its own threads while this thread reads and
      // validates chunk k+1 and writes chunk k-1.
      const finish = async (job: InFlight): Promise<void> => {
        const result = assemble(options, id, idColumn, job, duplicates, firstSeen, await job.probabilities);
        if (job.categoryCodes !== null)
          result.scores.features = { width: storedFeatures.length, codes: keptFeatures(job.categoryCodes, storedFeatures.length, job.keptRows) };
        if (reasons !== null) keepReasons(result.scores, await (job.reasons as Promise<BatchReasons>), job.keptRows, model.bundle);
        if (options.badRows === "fail" && result.quarantine.length > 0) {
          const first = result.quarantine[0] as QuarantineRow;
          throw new ChurnopsError(
            "validation_failed",
            `row ${first.row_number} (customer ${first.customer_id ?? "?"}): ${first.reason}; the bad-row policy is "fail"`,
          );
        }
        rowsDone = job.chunk.start + job.chunk.size;
        if (fingerprint !== null && idColumn !== null) fingerprint.addColumn(job.chunk.columns.get(idColumn) as ColumnValues, job.chunk.size);
        if (drift !== null) {
          drift.profiler.add(job.chunk.columns, job.chunk.size);
          binScores(model.bundle.reference.score.edges, result.scores.probabilities as Float64Array, drift.scoreBins);
        }
        if (store !== null) {
          const write = {
            ...result,
            checkpointRows: rowsDone,
            fingerprint: fingerprint?.state ?? null,
            profile: drift === null ? null : JSON.stringify({ profile: drift.profiler.profile(), score_bins: drift.scoreBins } satisfies RunProfile),
          };
          if (writer === null) await writeChunk(store, id, write);
          else await commitBehind(writer.write(id, write));
        }
        if (fileSink !== null) await fileSink.append(result.scores);
        for (const band of result.scores.bands) bandTally[band] = (bandTally[band] ?? 0) + 1;
        rowsScored += result.scores.customerIds.length;
        rowsQuarantined += result.quarantine.length;
        options.onProgress?.({ rowsDone, rowsScored, rowsQuarantined });
      };
      let inflight: InFlight | null = null;
      try {
        for await (const chunk of source.modelChunks({ columns: wanted, chunkSize: options.chunkSize, skipRows: resumedFrom }, columnHints(model, idColumn))) {
          const checked = validator.checkChunk(chunk.columns, chunk.size, { textNumbers: source.textNumbers });
          // Encoded before inference takes the batch's arrays.
          const categoryCodes = store === null ? null : encodeFeatures(storedFeatures, model.bundle.schema.missing_token, checked.batch);
          const job: InFlight = { chunk, checked, categoryCodes, ...scoreChunk(model, checked.batch, reasons) };
          const previous = inflight;
          inflight = job;
          if (previous !== null) await finish(previous);
        }
        const last = inflight;
        inflight = null;
        if (last !== null) await finish(last);
      } finally {
        // A chunk still scoring when something failed must settle before the session may be released.
        await (inflight as InFlight | null)?.probabilities.catch(() => undefined);
      }
      const failed = await committing;
      if (failed !== null) throw failed;
      // Counted by the store when there is one: the rows it holds, not the rows offered to it.
      if (store !== null) ({ rows_scored: rowsScored, rows_quarantined: rowsQuarantined } = await getRun(store, id));
      if (Number(rowsScored) === 0) throw nothingScored(id, source.description, rowsDone, store !== null, run?.replaces ?? null);
      if (fileSink !== null) await fileSink.close();
    } catch (err) {
      // A commit still running on the writer thread settles before the run is marked failed.
      await committing;
      if (store !== null) await finishRun(store, id, { status: "failed", durationMs: performance.now() - started, error: (err as Error).message });
      throw err;
    }
    const durationMs = performance.now() - started;
    let bands: Record<string, number>;
    if (store !== null) {
      id = (await finishRun(store, id, { status: "complete", durationMs })).run_id;
      if (exportAtEnd && options.out !== undefined) await exportRun(store, id, options.out, reasonColumns);
      // Counted while scoring, unless earlier chunks came from an interrupted invocation: then the store knows.
      bands = resumedFrom === 0 ? { ...bandTally } : await bandCounts(store, id);
    } else bands = { ...bandTally };
    const scoredNow = rowsDone - resumedFrom;
    return {
      ...summaryBase(options, id, source.description),
      status: "complete",
      rowsRead: rowsDone,
      rowsScored: Number(rowsScored),
      rowsQuarantined: Number(rowsQuarantined),
      resumedFrom,
      bands,
      durationMs,
      rowsPerSecond: durationMs > 0 ? (scoredNow / durationMs) * 1000 : 0,
      out: options.out ?? null,
    };
  } finally {
    // After a failure the scratch data goes and no partial file is written; after success this does nothing.
    await fileSink?.discard();
    await writer?.close();
    await source.close();
  }
}

/** A run that scored no row is a failure: an empty table or one where every row was refused is not a day's scores. */
function nothingScored(runId: string, source: string, rowsRead: number, stored: boolean, replaces: string | null): ChurnopsError {
  const why =
    rowsRead === 0
      ? `${source} has no rows`
      : `every one of the ${rowsRead} rows of ${source} was quarantined${stored ? ` (see: churnops quarantine ${runId})` : ""}`;
  return new ChurnopsError(
    "validation_failed",
    `no customer was scored: ${why}${stored ? `; run ${runId} is marked failed` : ""}${replaces === null ? "" : ` and run ${replaces} keeps the scores it had`}`,
    { field: "data" },
  );
}

/**
 * A resumed run skips the rows before its checkpoint; they must be the rows it scored. Their ids are read again
 * and must give the fingerprint stored with the checkpoint (another order or another table does not). The
 * fingerprint to continue from, or null when there is nothing to keep (no id column: ids are row numbers).
 */
async function checkResumedInput(source: CustomerSource, run: ScoreRun, idColumn: string | null, chunkSize: number): Promise<IdFingerprint | null> {
  if (idColumn === null) return null;
  const skip = Number(run.checkpoint_rows);
  if (skip === 0) return IdFingerprint.start();
  // A run interrupted before fingerprints were kept (migration 006) cannot be checked, and keeps none.
  if (run.input_fingerprint === null) return null;
  const prefix = await fingerprintPrefix(source, idColumn, skip, chunkSize);
  if (prefix.rows !== skip || prefix.state !== run.input_fingerprint)
    throw new ChurnopsError(
      "conflict",
      `run ${run.run_id} stopped after row ${skip}, but the first ${skip} rows of ${source.description} are not the rows it scored ` +
        `(${prefix.rows < skip ? `the input has only ${prefix.rows}` : "other ids, or another order"}); resuming would skip rows never scored. ` +
        "Give --rerun to start the run over with this input",
      { field: "data" },
    );
  return IdFingerprint.resume(prefix.state);
}

interface RunDrift {
  profiler: BatchProfiler;
  scoreBins: number[];
}

/** The drift profile to continue: empty for a fresh run, the stored one for a resumed run (none if it kept none). */
async function startDrift(store: Store, run: ScoreRun, model: ChurnModel): Promise<RunDrift | null> {
  const empty = (): number[] => new Array<number>(model.bundle.reference.score.edges.length + 1).fill(0);
  if (Number(run.checkpoint_rows) === 0) return { profiler: new BatchProfiler(model.bundle), scoreBins: empty() };
  const stored = await runProfile(store, run.run_id);
  if (stored === null) return null;
  const saved = JSON.parse(stored) as RunProfile;
  return { profiler: new BatchProfiler(model.bundle, saved.profile), scoreBins: saved.score_bins };
}

function summaryBase(options: BatchOptions, runId: string, source: string) {
  const { bands, thresholds } = options.model.bundle;
  return {
    runId,
    kind: options.kind,
    asOf: options.asOf,
    modelName: options.model.name,
    modelVersion: options.model.version,
    source,
    bandCutoffs: bands,
    operatingThreshold: thresholds.operating,
  };
}

/**
 * For ids that occur more than once, the first occurrence is scored and later ones are quarantined. A resumed
 * run must remember which duplicated ids it already scored before the crash, so it asks the store.
 */
async function seedDuplicates(store: Store | null, runId: string, duplicates: ReadonlySet<string>): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  if (store === null || duplicates.size === 0) return seen;
  for (const id of await scoredCustomerIds(store, runId, duplicates)) seen.set(id, -1);
  return seen;
}

/** The model's numeric and categorical features, so the reader can take them in their cheapest form. */
function columnHints(model: ChurnModel, idColumn: string | null): ColumnHints {
  const features = model.bundle.schema.features.filter((f) => f.name !== idColumn);
  return {
    numeric: new Set(features.filter((f) => f.kind === "numeric").map((f) => f.name)),
    categories: new Map(features.flatMap((f) => (f.kind === "categorical" ? [[f.name, f.categories] as const] : []))),
  };
}

interface InFlight {
  chunk: RawChunk<ColumnValues>;
  checked: ChunkValidation;
  probabilities: Promise<Float32Array>;
  /** The top reasons of the chunk's valid rows, when scoring with reasons. */
  reasons: Promise<BatchReasons> | null;
  /** The batch's categorical inputs as stored codes (src/store/score-features.ts), when there is a store. */
  categoryCodes: Uint8Array | null;
  /** Filled by assemble: for each score row, its row in `checked.batch` (some valid rows are still quarantined). */
  keptRows: number[];
}

type ReasonRun = ReturnType<ChurnModel["reasonRun"]>;

function scoreChunk(model: ChurnModel, batch: FeatureBatch, reasons: ReasonRun | null): Pick<InFlight, "probabilities" | "reasons" | "keptRows"> {
  if (reasons === null) return { probabilities: model.predict(batch), reasons: null, keptRows: [] };
  // The reasons are built with the contributions (in the inference worker): only codes (and JSON) come back.
  const scored = reasons(batch);
  return { probabilities: scored.then((s) => s.probabilities), reasons: scored.then((s) => s.reasons), keptRows: [] };
}

/** The reason run of a batch with --reasons; a bundle without contributions is refused before any row is read. */
function reasonRunFor(options: BatchOptions, json: boolean): ReasonRun | null {
  const n = options.reasons ?? 0;
  if (n <= 0) return null;
  const { model } = options;
  if (!model.explains) {
    throw new ChurnopsError(
      "bad_input",
      `--reasons: model ${model.name} v${model.version} has no contributions (${model.explanationsUnavailable}); score without --reasons`,
      { field: "reasons" },
    );
  }
  return model.reasonRun(n, options.language ?? "en", json);
}

/**
 * The reasons of the rows that became scores (some valid rows are still quarantined: duplicate or empty ids):
 * codes for the file (sentences numbered by the run, see CodedReasons) and, for the store, the JSON per row.
 */
function keepReasons(scores: ScoreColumns, reasons: BatchReasons, keptRows: readonly number[], bundle: ChurnModel["bundle"]): void {
  const { n } = reasons;
  const rows = keptRows.length;
  // keptRows rises through the batch's rows: as many as the batch has means every one, in order (the usual case).
  const every = rows * n === reasons.featureCodes.length;
  let { featureCodes, textCodes } = reasons;
  if (!every) {
    featureCodes = new Uint8Array(rows * n);
    textCodes = new Uint32Array(rows * n);
    for (let r = 0; r < rows; r++) {
      const k = keptRows[r] as number;
      featureCodes.set(reasons.featureCodes.subarray(k * n, k * n + n), r * n);
      textCodes.set(reasons.textCodes.subarray(k * n, k * n + n), r * n);
    }
  }
  const json = reasons.json;
  scores.reasons = json === null ? undefined : every ? json : keptRows.map((k) => json[k] as string);
  const features = bundle.explanations.available ? bundle.explanations.features.map((f) => f.name) : [];
  scores.reasonCodes = { n, features, featureCodes, textCodes, textBase: reasons.textBase, newTexts: reasons.newTexts };
}

/** Turn one scored chunk into score rows and quarantine rows (ids checked, duplicates caught). */
function assemble(
  options: BatchOptions,
  runId: string,
  idColumn: string | null,
  job: InFlight,
  duplicates: ReadonlySet<string>,
  firstSeen: Map<string, number>,
  probabilities: Float32Array,
): ChunkResult {
  const { model } = options;
  const { chunk, checked } = job;
  const ids = idColumn === null ? null : (chunk.columns.get(idColumn) as ColumnValues);
  const idOf = (i: number): string | null => {
    if (ids === null) return String(chunk.start + i + 1);
    const id = idAt(ids, i);
    // An id the store cannot hold is quarantined without it (validation named it in the reason).
    return id === null || unstorableId(id) !== null ? null : id;
  };
  const quarantine: QuarantineRow[] = checked.badRows.map((b) => ({
    run_id: runId,
    row_number: chunk.start + b.index + 1,
    customer_id: idOf(b.index),
    reason: describeViolations(b.violations),
  }));
  const scoredAt = new Date().toISOString();
  const customerIds: string[] = [];
  const probabilitiesOut = new Float64Array(checked.goodRows.length);
  const bands: string[] = [];
  const decisions = new Uint8Array(checked.goodRows.length);
  let n = 0;
  for (let k = 0; k < checked.goodRows.length; k++) {
    const i = checked.goodRows[k] as number;
    const rowNumber = chunk.start + i + 1;
    const customerId = idOf(i);
    if (customerId === null) {
      quarantine.push({ run_id: runId, row_number: rowNumber, customer_id: null, reason: `${idColumn}: the customer id is empty` });
      continue;
    }
    if (duplicates.has(customerId)) {
      const first = firstSeen.get(customerId);
      if (first !== undefined) {
        const where = first > 0 ? `row ${first}` : "an earlier row";
        quarantine.push({
          run_id: runId,
          row_number: rowNumber,
          customer_id: customerId,
          reason: `${idColumn}: duplicate customer id ${customerId} (already scored from ${where})`,
        });
        continue;
      }
      firstSeen.set(customerId, rowNumber);
    }
    // Stored as the float32 the graph produced, widened exactly; consumers compare at 1e-6.
    const p = probabilities[k] as number;
    customerIds.push(customerId);
    probabilitiesOut[n] = p;
    bands.push(model.band(p));
    decisions[n] = model.decide(p) ? 1 : 0;
    job.keptRows.push(k);
    n++;
  }
  quarantine.sort((a, b) => a.row_number - b.row_number);
  const scores: ScoreColumns = {
    runId,
    modelName: model.name,
    modelVersion: model.version,
    scoredAt,
    customerIds,
    probabilities: probabilitiesOut.subarray(0, n),
    bands,
    decisions: decisions.subarray(0, n),
  };
  return { scores, quarantine };
}

/** Where a run's file output goes while it scores: the file sink thread, or this thread for a one-chunk input. */
interface ScoreFile {
  append(scores: ScoreColumns): Promise<void>;
  close(): Promise<void>;
  /** After a failure: no partial file; after close: nothing. */
  discard(): Promise<void>;
}

/** The file sink on the scoring thread, with the thread writer's contract. */
class InThreadFile implements ScoreFile {
  private ended = false;

  private constructor(private readonly sink: ScoreFileSink) {}

  static async open(path: string, reasons: number): Promise<InThreadFile> {
    return new InThreadFile(await ScoreFileSink.open(path, reasons));
  }

  async append(scores: ScoreColumns): Promise<void> {
    this.sink.appendCoded(codeScores(scores));
  }

  async close(): Promise<void> {
    this.ended = true;
    await this.sink.close();
  }

  async discard(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.sink.discard();
  }
}

/** Write a stored run's scores to a Parquet or CSV file, page by page. */
export async function exportRun(store: Store, runId: string, out: string, reasons = 0): Promise<number> {
  const sink = await ScoreFileSink.open(out, reasons);
  for await (const page of iterateScores(store, runId)) sink.appendRows(page);
  const n = sink.count;
  await sink.close();
  return n;
}
