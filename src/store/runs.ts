import type SqliteDatabase from "better-sqlite3";
import { type Selectable, sql } from "kysely";
import { describeIdentity } from "../data/input-identity.js";
import { ChurnopsError } from "../errors.js";
import { newOwner, ownerIsGone } from "../owner.js";
import type { CodedReasons } from "../scoring/file-sink.js";
import type { Store } from "./db.js";
import type { QuarantineTable, ScoreRunsTable, ScoresTable } from "./schema.js";
import { writeChunkPostgres } from "./score-copy.js";

export type ScoreRun = ScoreRunsTable;
/** A stored score; `reasons` (JSON, migration 016) is null or absent for scores made without reasons. */
export type ScoreRow = Omit<Selectable<ScoresTable>, "reasons" | "features" | "run_key"> & { reasons?: string | null };

/**
 * A run record's columns: everything but `run_key` (migration 020), the store's own integer name for the run,
 * which nothing outside src/store/ uses.
 */
export const SCORE_RUN_COLUMNS = [
  "run_id",
  "kind",
  "as_of",
  "model_name",
  "model_version",
  "source",
  "status",
  "started_at",
  "finished_at",
  "rows_read",
  "rows_scored",
  "rows_quarantined",
  "checkpoint_rows",
  "duration_ms",
  "error",
  "lease_owner",
  "lease_expires_at",
  "input",
  "input_fingerprint",
  "replaces",
  "pruned_at",
] as const satisfies readonly (keyof ScoreRunsTable)[];

/**
 * The condition "these scores are run `runId`'s" on the `scores` view, by the run's key. Filtering the view's
 * `run_id` alone is right but, on PostgreSQL, plans as a join over every run's rows (the key is known only at
 * run time): a seq scan and a sort instead of a seek into the run's part of the index. With the key as an
 * subquery computed once, both databases seek (measured on PostgreSQL, 1M rows in 5 runs: a risk-list page
 * 322 ms → 3.7 ms, seq scan + sort → index-only scan in order). Add it beside `run_id = …` (same rows).
 */
export function scoresOfRun(runId: string) {
  return sql<boolean>`run_key = (SELECT r.run_key FROM score_runs r WHERE r.run_id = ${runId})`;
}

/** The columns of a ScoreRow (the `scores` view also has `features`, which these readers do not need). */
const SCORE_ROW_COLUMNS = ["run_id", "customer_id", "probability", "band", "decision", "model_name", "model_version", "scored_at", "reasons"] as const;
export type QuarantineRow = QuarantineTable;

/** The store's own integer name of a run (score_runs.run_key, migration 020), or null for no such run. */
export async function runKeyOf(store: Store, runId: string): Promise<number | null> {
  const row = await sql<{ run_key: number }>`SELECT run_key FROM score_runs WHERE run_id = ${runId}`.execute(store.db);
  return row.rows[0]?.run_key ?? null;
}

export function scoreRunId(kind: string, asOf: string, modelName: string, modelVersion: string): string {
  return `${kind}-${asOf}-${modelName}-v${modelVersion}`;
}

export interface RunKey {
  kind: "daily" | "monthly";
  asOf: string;
  modelName: string;
  modelVersion: string;
  /** The input's description (a path, or a URL without its password). */
  source: string;
  /** The input's identity (src/scoring/input-identity.ts); without it, runs are told apart by `source`. */
  input?: string | undefined;
  /** Replace the run's scores with a scoring of this input from row zero, whatever the run holds now. */
  rerun?: boolean | undefined;
}

/**
 * Start a run, or pick up the unfinished one with the same natural key (kind, as-of date, model). The
 * deterministic run id is what makes a re-run idempotent and a killed run resumable. A run that exists for
 * another input is refused (skipping its checkpoint's rows in another input would lose scores; calling another
 * table "already complete" would hide that it was never scored), unless `rerun` asks to start it over.
 */
export async function startOrResumeRun(store: Store, key: RunKey, now: Date = new Date()): Promise<ScoreRun> {
  const run_id = scoreRunId(key.kind, key.asOf, key.modelName, key.modelVersion);
  await insertRunOnce(store, run_id, key, now, null);
  const run = await getRun(store, run_id);
  // Runs stored before input records (migration 006) are known by their source's description only.
  const otherInput = run.input !== null && key.input !== undefined ? run.input !== key.input : run.source !== key.source;
  const rerun = key.rerun === true;
  if (run.status === "complete" && !rerun) {
    if (run.pruned_at !== null)
      throw new ChurnopsError("conflict", `run ${run_id}'s scores were pruned at ${run.pruned_at}; give --rerun to score it again`, { field: "rerun" });
    if (!otherInput) return run;
    throw new ChurnopsError(
      "conflict",
      `run ${run_id} is already complete, scored from ${describeInput(run)}; this input is ${describeInput(key)}. ` +
        "Give --rerun to replace that run's scores with this input's, or score it as another run (--as-of DATE or --kind monthly)",
      { field: "data" },
    );
  }
  if (otherInput && !rerun && Number(run.checkpoint_rows) > 0) {
    throw new ChurnopsError(
      "conflict",
      `run ${run_id} stopped after row ${run.checkpoint_rows} of ${describeInput(run)}; this input is ${describeInput(key)}, and resuming would ` +
        "skip that many rows of another input. Score the same input again to resume, or give --rerun to start the run over with this one",
      { field: "data" },
    );
  }
  if (run.status === "complete") {
    // A complete run keeps its scores for every reader until the re-run's are all in.
    await assertNoCampaigns(store, run_id);
    return startOrResumeRerun(store, run, key, now);
  }
  await claimRun(store, run, now);
  if (rerun || otherInput) {
    await assertNoCampaigns(store, run_id);
    await restartRun(store, run_id, key, now);
  }
  return getRun(store, run_id);
}

/** The id of the run a re-run of `runId` scores into until it completes. */
export function rerunId(runId: string): string {
  return `${runId}~rerun`;
}

/**
 * A re-run of a complete run scores into a run of its own (`<run>~rerun`, naming the run it replaces), so that
 * readers of the original see all of its scores, never part of the new ones. A killed re-run leaves the original
 * as it was; the next `--rerun` with the same input resumes it, with another input starts it over.
 */
async function startOrResumeRerun(store: Store, original: ScoreRun, key: RunKey, now: Date): Promise<ScoreRun> {
  const run_id = rerunId(original.run_id);
  await insertRunOnce(store, run_id, key, now, original.run_id);
  const staged = await getRun(store, run_id);
  await claimRun(store, staged, now);
  const otherInput = staged.input !== null && key.input !== undefined ? staged.input !== key.input : staged.source !== key.source;
  if (otherInput || staged.status === "failed") await restartRun(store, run_id, key, now);
  return getRun(store, run_id);
}

/**
 * A completed re-run takes its original's place in one transaction: the original's scores, quarantine, profile
 * and the reports computed from them go, the re-run's rows move under the original's id, and the original's
 * record describes the new input. Until the commit every reader sees the original as it was.
 */
async function replaceWithRerun(store: Store, rerun: ScoreRun, finished: { finished_at: string; duration_ms: number }): Promise<void> {
  const originalId = rerun.replaces as string;
  await store.db.transaction().execute(async (trx) => {
    await sql`DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = ${originalId})`.execute(trx);
    for (const table of ["quarantine", "run_profiles", "drift_reports", "performance_estimates"] as const)
      await trx.deleteFrom(table).where("run_id", "=", originalId).execute();
    await sql`UPDATE score_rows SET run_key = (SELECT run_key FROM score_runs WHERE run_id = ${originalId})
      WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = ${rerun.run_id})`.execute(trx);
    for (const table of ["quarantine", "run_profiles"] as const)
      await trx.updateTable(table).set({ run_id: originalId }).where("run_id", "=", rerun.run_id).execute();
    await trx
      .updateTable("score_runs")
      .set({
        source: rerun.source,
        input: rerun.input,
        input_fingerprint: rerun.input_fingerprint,
        status: "complete",
        started_at: rerun.started_at,
        finished_at: finished.finished_at,
        rows_read: rerun.rows_read,
        rows_scored: rerun.rows_scored,
        rows_quarantined: rerun.rows_quarantined,
        checkpoint_rows: rerun.checkpoint_rows,
        duration_ms: finished.duration_ms,
        error: null,
        pruned_at: null,
        lease_owner: null,
        lease_expires_at: null,
      })
      .where("run_id", "=", originalId)
      .execute();
    await trx.deleteFrom("score_runs").where("run_id", "=", rerun.run_id).execute();
  });
}

/** A new run's record, unless one with this id exists (then it is left as it is). */
async function insertRunOnce(store: Store, run_id: string, key: RunKey, now: Date, replaces: string | null): Promise<void> {
  await store.db
    .insertInto("score_runs")
    .values({
      run_id,
      kind: key.kind,
      as_of: key.asOf,
      model_name: key.modelName,
      model_version: key.modelVersion,
      ...startingState(key, now),
      lease_owner: null,
      lease_expires_at: null,
      replaces,
    })
    .onConflict((oc) => oc.column("run_id").doNothing())
    .execute();
}

/** A run's record as it starts from row zero with this input (new, or started over). */
function startingState(key: RunKey, now: Date) {
  return {
    source: key.source,
    input: key.input ?? null,
    input_fingerprint: null,
    status: "running" as const,
    started_at: now.toISOString(),
    finished_at: null,
    rows_read: 0,
    rows_scored: 0,
    rows_quarantined: 0,
    checkpoint_rows: 0,
    duration_ms: null,
    error: null,
    pruned_at: null,
  };
}

function describeInput(from: { source: string; input?: string | null | undefined }): string {
  return from.input === null || from.input === undefined ? from.source : describeIdentity(from.input);
}

/** A campaign's members were drawn from a run's scores: replacing those scores would change it after the fact. */
async function assertNoCampaigns(store: Store, runId: string): Promise<void> {
  const planned = await store.db.selectFrom("campaigns").select("name").where("run_id", "=", runId).orderBy("name").execute();
  if (planned.length === 0) return;
  throw new ChurnopsError(
    "conflict",
    `run ${runId} cannot be scored again: campaign ${planned.map((c) => c.name).join(", ")} was planned from its scores; score the new input as another run (--as-of DATE or --kind monthly)`,
    { field: "rerun" },
  );
}

/**
 * Empty a claimed run and point it at a new input, in one transaction: either the old scores stay with the old
 * input record, or none of them remain and the run starts again from row zero (its drift report goes too).
 */
async function restartRun(store: Store, runId: string, key: RunKey, now: Date): Promise<void> {
  await store.db.transaction().execute(async (trx) => {
    await sql`DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = ${runId})`.execute(trx);
    for (const table of ["quarantine", "run_profiles", "drift_reports"] as const) await trx.deleteFrom(table).where("run_id", "=", runId).execute();
    await trx.updateTable("score_runs").set(startingState(key, now)).where("run_id", "=", runId).where("lease_owner", "=", processOwner()).execute();
  });
}

/** How long a claim on a run holds without a committed chunk renewing it. */
export const LEASE_MS = 120_000;

/** This process, as the owner of the runs it claims (one identity for its whole life, so renewals match). */
const PROCESS_OWNER = newOwner();

export function processOwner(): string {
  return PROCESS_OWNER;
}

/**
 * Claim an unfinished run for this process, so two scorers never work on the same run at once. A claim is
 * taken over when it expired, or at once when its owner was a process on this host that no longer exists
 * (a run killed with SIGKILL is resumed immediately by the next invocation).
 */
async function claimRun(store: Store, run: ScoreRun, now: Date): Promise<void> {
  const me = processOwner();
  const expires = new Date(now.getTime() + LEASE_MS).toISOString();
  const free = run.lease_owner === null || run.lease_owner === me || (run.lease_expires_at ?? "") < now.toISOString() || ownerIsGone(run.lease_owner);
  if (!free) {
    throw new ChurnopsError(
      "run_locked",
      `score run ${run.run_id} is being scored by ${run.lease_owner} (claim holds until ${run.lease_expires_at}); try again later`,
    );
  }
  const res = await store.db
    .updateTable("score_runs")
    .set({ status: "running", error: null, lease_owner: me, lease_expires_at: expires })
    .where("run_id", "=", run.run_id)
    .where((eb) => (run.lease_owner === null ? eb("lease_owner", "is", null) : eb("lease_owner", "=", run.lease_owner)))
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1)
    throw new ChurnopsError("run_locked", `score run ${run.run_id} was claimed by another process just now; try again later`);
}

export async function getRun(store: Store, runId: string): Promise<ScoreRun> {
  const row = await store.db.selectFrom("score_runs").select(SCORE_RUN_COLUMNS).where("run_id", "=", runId).executeTakeFirst();
  if (row === undefined) throw new ChurnopsError("run_not_found", `no score run ${runId} (see \`churnops runs\`)`);
  return row;
}

export interface RunChoice {
  kind?: "daily" | "monthly" | undefined;
  /** Which finished runs `latest` may mean: complete ones (default), or failed ones too (to see why they failed). */
  statuses?: readonly ("complete" | "failed")[] | undefined;
}

/**
 * `latest` means the most recently finished run (complete, unless `statuses` says otherwise), whatever date it
 * was for: right after `score`, it is that run. Anything else is a run id.
 */
export async function resolveRun(store: Store, ref: string, choice: RunChoice = {}): Promise<ScoreRun> {
  if (ref !== "latest") return getRun(store, ref);
  const statuses = choice.statuses ?? ["complete"];
  let q = store.db.selectFrom("score_runs").select(SCORE_RUN_COLUMNS).where("status", "in", statuses).where("finished_at", "is not", null);
  if (choice.kind !== undefined) q = q.where("kind", "=", choice.kind);
  const row = await q.orderBy("finished_at", "desc").orderBy("run_id", "desc").limit(1).executeTakeFirst();
  if (row === undefined) throw new ChurnopsError("run_not_found", `there is no ${statuses.join(" or ")} score run yet (run \`churnops score\` first)`);
  return row;
}

/** A run whose scores `churnops prune` removed cannot be planned from, exported or estimated: it says so. */
export function requireScores(run: ScoreRun): ScoreRun {
  if (run.pruned_at !== null)
    throw new ChurnopsError("conflict", `run ${run.run_id}'s scores were pruned at ${run.pruned_at} (retention); choose a later run (see \`churnops runs\`)`, {
      field: "run",
    });
  return run;
}

/** How a command names the run it chose, so `latest` is never a guess: "run R (latest: finished T)". */
export function chosenRun(ref: string, run: ScoreRun): string {
  return ref === "latest" ? `run ${run.run_id} (latest: the most recently finished, at ${run.finished_at})` : `run ${run.run_id}`;
}

/** The drift profile stored with a run's checkpoints (JSON), or null for runs scored before profiles were kept. */
export async function runProfile(store: Store, runId: string): Promise<string | null> {
  const row = await store.db.selectFrom("run_profiles").select("profile").where("run_id", "=", runId).executeTakeFirst();
  return row?.profile ?? null;
}

export async function listRuns(store: Store, limit = 20): Promise<ScoreRun[]> {
  return store.db.selectFrom("score_runs").select(SCORE_RUN_COLUMNS).orderBy("started_at", "desc").limit(limit).execute();
}

/**
 * One chunk's scores, column by column. A chunk holds tens of thousands of rows; an object per row cost more
 * than storing it. Every row of a chunk shares run, model and time.
 */
export interface ScoreColumns {
  runId: string;
  modelName: string;
  modelVersion: string;
  scoredAt: string;
  customerIds: string[];
  probabilities: ArrayLike<number>;
  /** The bundle's band labels (shared strings, not copies). */
  bands: string[];
  /** 1 = at or above the operating threshold. */
  decisions: ArrayLike<number>;
  /** Per row, its top reasons as JSON (src/model/reasons.ts), when scored with --reasons; else absent. */
  reasons?: (string | null)[] | undefined;
  /** The same reasons for files, coded (see CodedReasons in src/scoring/file-sink.ts). */
  reasonCodes?: CodedReasons | undefined;
  /**
   * Per row, its categorical inputs as codes: `width` bytes a row (one per categorical feature of the bundle,
   * in the bundle's order), row-major; stored as `features` (see src/store/score-features.ts). Absent: none kept.
   */
  features?: { width: number; codes: Uint8Array } | undefined;
}

export interface ChunkWrite {
  scores: ScoreColumns;
  quarantine: QuarantineRow[];
  /** Input rows handled once this chunk is committed. */
  checkpointRows: number;
  /** The input's id fingerprint after `checkpointRows` rows (see src/scoring/id-fingerprint.ts). */
  fingerprint?: string | null | undefined;
  /** The run's drift profile so far (JSON), saved with the checkpoint so a resumed run continues it. */
  profile?: string | null | undefined;
}

/**
 * Write one chunk's scores and quarantined rows and advance the checkpoint in one transaction: after a crash
 * the store holds whole chunks only, and the checkpoint says exactly where to resume.
 */
export async function writeChunk(store: Store, runId: string, chunk: ChunkWrite): Promise<void> {
  if (store.sqlite !== null) {
    writeChunkSqlite(store.sqlite, runId, chunk);
    return;
  }
  await writeChunkPostgres(store, runId, chunk, { owner: processOwner(), leaseMs: LEASE_MS });
}

const sqliteStatements = new WeakMap<SqliteDatabase.Database, ReturnType<typeof prepareSqlite>>();

/** Score rows per multi-row INSERT on SQLite: one call for 64 rows instead of 64 calls (measured 1.3 vs 2.3 µs a row). */
const SQLITE_SCORE_ROWS = 64;
/** Values bound per score row. */
const SQLITE_ROW_ARGS = 6;

function prepareSqlite(db: SqliteDatabase.Database) {
  // The run key is bound once per statement by name; each row binds six.
  const row = "(@key, ?, ?, ?, ?, ?, ?)";
  const insert = (rows: number) =>
    db.prepare(
      `INSERT INTO score_rows (run_key, customer_id, probability, band_code, decision, reasons, features) VALUES ${Array(rows).fill(row).join(", ")} ON CONFLICT (run_key, customer_id) DO NOTHING`,
    );
  return {
    renew: db.prepare<[string, string, string], { run_key: number }>(
      "UPDATE score_runs SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ? RETURNING run_key",
    ),
    scoreMany: insert(SQLITE_SCORE_ROWS),
    scoreOne: insert(1),
    addBand: db.prepare("INSERT INTO score_bands (band) VALUES (?) ON CONFLICT (band) DO NOTHING"),
    bandCode: db.prepare<[string], number>("SELECT band_code FROM score_bands WHERE band = ?").pluck(),
    /** Codes known to be committed (a code looked up in a transaction that rolled back may not exist). */
    bands: new Map<string, number>(),
    quarantine: db.prepare("INSERT INTO quarantine (run_id, row_number, customer_id, reason) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, row_number) DO NOTHING"),
    checkpoint: db.prepare(
      "UPDATE score_runs SET checkpoint_rows = ?, rows_read = ?, rows_scored = rows_scored + ?, rows_quarantined = rows_quarantined + ?, input_fingerprint = coalesce(?, input_fingerprint) WHERE run_id = ?",
    ),
    profile: db.prepare("INSERT INTO run_profiles (run_id, profile) VALUES (?, ?) ON CONFLICT (run_id) DO UPDATE SET profile = excluded.profile"),
  };
}

/**
 * The order that visits `ids` ascending, or null when they already are. Rows go into the (run, customer) key in
 * key order: a chunk of a table not sorted by id otherwise scatters over the whole B-tree, and each commit
 * rewrites nearly every page it touched (measured with benchmarks/sqlite_floor.ts, 1M shuffled ids: 23.3 s of
 * writes, 8.4 s with this sort; 1.9–2.1 s for ids already ascending).
 */
export function ascendingOrder(ids: readonly string[]): Uint32Array | null {
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = (ids[i - 1] as string) <= (ids[i] as string);
  if (sorted) return null;
  return Uint32Array.from(ids.keys()).sort((a, b) => {
    const x = ids[a] as string;
    const y = ids[b] as string;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * The same transaction as the PostgreSQL path, through prepared statements: building a multi-row INSERT per
 * 1,000 rows through the query builder costs more than SQLite itself at millions of rows, while prepared
 * statements inside one transaction run at SQLite's own speed. Same semantics: claim renewed first (it also
 * names the run's key), all-or-nothing per chunk.
 */
export function writeChunkSqlite(db: SqliteDatabase.Database, runId: string, chunk: ChunkWrite, owner = processOwner()): void {
  let st = sqliteStatements.get(db);
  if (st === undefined) {
    st = prepareSqlite(db);
    sqliteStatements.set(db, st);
  }
  const s = st;
  const looked = new Map<string, number>();
  db.transaction(() => {
    const renewed = s.renew.get(new Date(Date.now() + LEASE_MS).toISOString(), runId, owner);
    if (renewed === undefined) throw new ChurnopsError("run_locked", `score run ${runId} was taken over by another process; stopping`);
    const c = chunk.scores;
    const n = c.customerIds.length;
    const shared = { key: renewed.run_key };
    const codeOf = (band: string): number => {
      let code = s.bands.get(band) ?? looked.get(band);
      if (code === undefined) {
        s.addBand.run(band);
        code = s.bandCode.get(band) as number;
        looked.set(band, code);
      }
      return code;
    };
    const order = ascendingOrder(c.customerIds);
    const args: unknown[] = new Array(SQLITE_SCORE_ROWS * SQLITE_ROW_ARGS);
    const reasons = c.reasons;
    const f = c.features;
    const features = f === undefined ? null : Buffer.from(f.codes.buffer, f.codes.byteOffset, f.codes.byteLength);
    const featuresOf = (j: number): Buffer | null => (features === null || f === undefined ? null : features.subarray(j * f.width, (j + 1) * f.width));
    // Band codes by the label's own string: a chunk's labels are a few shared strings.
    let lastBand = "";
    let lastCode = -1;
    const bandAt = (j: number): number => {
      const band = c.bands[j] as string;
      if (band !== lastBand || lastCode < 0) {
        lastBand = band;
        lastCode = codeOf(band);
      }
      return lastCode;
    };
    // Rows the store took (a conflicting id adds nothing), so rows_scored is always the run's stored scores.
    let inserted = 0;
    let i = 0;
    for (; i + SQLITE_SCORE_ROWS <= n; i += SQLITE_SCORE_ROWS) {
      for (let k = 0; k < SQLITE_SCORE_ROWS; k++) {
        const j = order === null ? i + k : (order[i + k] as number);
        const a = SQLITE_ROW_ARGS * k;
        args[a] = c.customerIds[j];
        args[a + 1] = c.probabilities[j];
        args[a + 2] = bandAt(j);
        args[a + 3] = c.decisions[j];
        args[a + 4] = reasons === undefined ? null : reasons[j];
        args[a + 5] = featuresOf(j);
      }
      inserted += s.scoreMany.run(shared, ...args).changes;
    }
    for (; i < n; i++) {
      const j = order === null ? i : (order[i] as number);
      inserted += s.scoreOne.run(
        shared,
        c.customerIds[j],
        c.probabilities[j],
        bandAt(j),
        c.decisions[j],
        reasons === undefined ? null : reasons[j],
        featuresOf(j),
      ).changes;
    }
    let quarantined = 0;
    for (const q of chunk.quarantine) quarantined += s.quarantine.run(q.run_id, q.row_number, q.customer_id, q.reason).changes;
    s.checkpoint.run(chunk.checkpointRows, chunk.checkpointRows, inserted, quarantined, chunk.fingerprint ?? null, runId);
    if (chunk.profile !== undefined && chunk.profile !== null) s.profile.run(runId, chunk.profile);
  })();
  for (const [band, code] of looked) s.bands.set(band, code);
}

/** Mark a run finished. A completed re-run replaces its original, and the original's record is what returns. */
export async function finishRun(
  store: Store,
  runId: string,
  outcome: { status: "complete" | "failed"; durationMs: number; error?: string },
): Promise<ScoreRun> {
  const finished = {
    status: outcome.status,
    finished_at: new Date().toISOString(),
    duration_ms: outcome.durationMs,
    error: outcome.error ?? null,
    lease_owner: null,
    lease_expires_at: null,
  };
  const run = await getRun(store, runId);
  if (run.replaces !== null && outcome.status === "complete") {
    await replaceWithRerun(store, run, finished);
    return getRun(store, run.replaces);
  }
  await store.db.updateTable("score_runs").set(finished).where("run_id", "=", runId).execute();
  return getRun(store, runId);
}

export async function bandCounts(store: Store, runId: string): Promise<Record<string, number>> {
  const rows = await store.db
    .selectFrom("scores")
    .select(["band", (eb) => eb.fn.countAll<number>().as("n")])
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .groupBy("band")
    .execute();
  return Object.fromEntries(rows.map((r) => [r.band, Number(r.n)]));
}

export async function topScores(store: Store, runId: string, limit: number): Promise<ScoreRow[]> {
  return store.db
    .selectFrom("scores")
    .select(SCORE_ROW_COLUMNS)
    .where("run_id", "=", runId)
    .where(scoresOfRun(runId))
    .orderBy("probability", "desc")
    .orderBy("customer_id")
    .limit(limit)
    .execute();
}

export async function quarantined(store: Store, runId: string, limit = 100): Promise<QuarantineRow[]> {
  return store.db.selectFrom("quarantine").selectAll().where("run_id", "=", runId).orderBy("row_number").limit(limit).execute();
}

/** Scores of a run in customer order, page by page (for exports that must not hold the whole run in memory). */
export async function* iterateScores(store: Store, runId: string, pageSize = 50_000): AsyncGenerator<ScoreRow[]> {
  let after: string | null = null;
  for (;;) {
    let q = store.db.selectFrom("scores").select(SCORE_ROW_COLUMNS).where("run_id", "=", runId).where(scoresOfRun(runId));
    if (after !== null) q = q.where("customer_id", ">", after);
    const page = await q.orderBy("customer_id").limit(pageSize).execute();
    if (page.length === 0) return;
    yield page;
    after = page[page.length - 1]?.customer_id ?? null;
  }
}

/**
 * Which of `ids` already have a score in run `runId` (a resumed run asks this for the ids its input repeats: the
 * first occurrence was scored before the crash, so the later ones are quarantined). Looked up 1,000 ids at a time.
 */
export async function scoredCustomerIds(store: Store, runId: string, ids: Iterable<string>): Promise<Set<string>> {
  const wanted = [...ids];
  const found = new Set<string>();
  for (let i = 0; i < wanted.length; i += 1000) {
    const rows = await store.db
      .selectFrom("scores")
      .select("customer_id")
      .where("run_id", "=", runId)
      .where(scoresOfRun(runId))
      .where("customer_id", "in", wanted.slice(i, i + 1000))
      .execute();
    for (const r of rows) found.add(r.customer_id);
  }
  return found;
}
