import { existsSync } from "node:fs";
import type { Config } from "../config.js";
import { openSource, type SourceSpec } from "../data/source.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import { type BundleJson, readBundle } from "../model/bundle.js";
import { resolveBundle } from "../model/registry.js";
import type { Store } from "../store/db.js";
import { saveDriftReport } from "../store/monitoring.js";
import { chosenRun, iterateScores, resolveRun, runProfile, type ScoreRun } from "../store/runs.js";
import { type AlertInput, type AlertSink, type RaisedAlert, raiseAlerts } from "./alerts.js";
import { assessDrift, BatchProfiler, binScores, type DriftSummary, type DriftThresholds, type RunProfile } from "./drift.js";

/**
 * Drift of a stored score run. Scoring profiles every row it reads and stores the counts with the run
 * (run_profiles), so a check reads a few hundred numbers. A run stored before profiles were kept (or one the
 * caller points at another input with `source`) has its inputs read again from its source instead: one extra
 * streaming pass. A source that cannot be reopened from the run record (a password-protected database, a
 * query) is named with `source`.
 */
export interface DriftReport extends DriftSummary {
  run_id: string;
  model_name: string;
  model_version: string;
  as_of: string;
  source: string;
  rows_profiled: number;
  rows_read: number;
  rows_scored: number;
  rows_quarantined: number;
  thresholds: DriftThresholds;
  created_at: string;
  /** Why the profiled rows differ from the run's (the source changed since scoring), when they do. */
  notes: string[];
}

export interface DriftDeps {
  store: Store;
  config: Config;
  log: Logger;
  alerts?: AlertSink | undefined;
}

export interface CheckDriftOptions {
  /** Read the run's inputs from here instead of `score_runs.source`. */
  source?: SourceSpec | undefined;
  /** The bundle directory of the run's model (default: resolve its registered version). */
  bundleDir?: string | undefined;
  chunkSize?: number | undefined;
}

/** The source a run was scored from, when its record is enough to open it again. */
export function sourceOfRun(run: ScoreRun): SourceSpec {
  const desc = run.source;
  const unusable = (why: string) =>
    new ChurnopsError("bad_input", `cannot reopen the inputs of run ${run.run_id} (${desc}): ${why}; name them with --data (and --table)`, { field: "data" });
  if (desc.startsWith("sqlite:") || desc.startsWith("postgres://") || desc.startsWith("postgresql://")) {
    const cut = desc.lastIndexOf(" ");
    const data = desc.slice(0, cut);
    const table = desc.slice(cut + 1);
    if (cut < 0 || table === "(query)") throw unusable("it was a query");
    if (data.includes(":***@")) throw unusable("the run record holds no password");
    return { data, table };
  }
  if (!existsSync(desc)) throw unusable("the file is gone");
  return { data: desc };
}

/** The bundle that scored a run (or the one given with --bundle, whose version may differ on purpose). */
export async function bundleOfRun(config: Config, run: ScoreRun, bundleDir: string | undefined): Promise<BundleJson> {
  const dir = bundleDir ?? (await resolveBundle(config, run.model_version)).bundlePath;
  const { json } = await readBundle(dir);
  if (json.model_version !== run.model_version && bundleDir === undefined)
    throw new ChurnopsError("bundle_invalid", `bundle ${dir} is version ${json.model_version}, but run ${run.run_id} was scored by v${run.model_version}`);
  return json;
}

/** Profile a run's inputs and scores against its bundle's reference; store the report. */
export async function driftOfRun(deps: DriftDeps, runRef: string, options: CheckDriftOptions = {}): Promise<DriftReport> {
  const { store, config } = deps;
  const run = await resolveRun(store, runRef);
  if (run.status !== "complete") throw new ChurnopsError("conflict", `run ${run.run_id} is ${run.status}; drift is checked on complete runs`);
  const bundle = await bundleOfRun(config, run, options.bundleDir);
  const notes: string[] = runRef === "latest" ? [chosenRun(runRef, run)] : [];
  const stored = options.source === undefined ? await runProfile(store, run.run_id) : null;
  let profiled: RunProfile & { source: string };
  if (stored !== null) {
    profiled = { ...(JSON.parse(stored) as RunProfile), source: run.source };
    notes.push("profiled while scoring (the input was not read again)");
  } else {
    if (options.source === undefined) notes.push("this run was scored before drift profiles were kept with runs: its input was read again");
    profiled = await reprofile(store, run, bundle, options.source ?? sourceOfRun(run), options.chunkSize ?? config.scoring.chunk_size);
  }
  const { profile, score_bins: scoreBins } = profiled;
  const rowsRead = Number(run.rows_read);
  if (profile.rows !== rowsRead) notes.push(`the source now has ${profile.rows} rows but the run read ${rowsRead}: it changed after scoring`);
  const summary = assessDrift({
    bundle,
    profile,
    scoreBins,
    rowsRead,
    rowsQuarantined: Number(run.rows_quarantined),
    thresholds: config.monitoring.drift,
  });
  const report: DriftReport = {
    run_id: run.run_id,
    model_name: run.model_name,
    model_version: run.model_version,
    as_of: run.as_of,
    source: profiled.source,
    rows_profiled: profile.rows,
    rows_read: rowsRead,
    rows_scored: Number(run.rows_scored),
    rows_quarantined: Number(run.rows_quarantined),
    thresholds: config.monitoring.drift,
    created_at: new Date().toISOString(),
    notes,
    ...summary,
  };
  await saveDriftReport(store, {
    run_id: run.run_id,
    model_name: run.model_name,
    model_version: run.model_version,
    as_of: run.as_of,
    severity: report.severity,
    max_psi: report.max_feature_psi,
    rows_profiled: report.rows_profiled,
    report: JSON.stringify(report),
    created_at: report.created_at,
  });
  deps.log.info(
    { event: "drift.checked", run_id: run.run_id, severity: report.severity, drifted: report.drifted, max_feature_psi: report.max_feature_psi },
    "drift checked",
  );
  return report;
}

/** Profile a run's inputs by reading them again, and bin its stored scores. */
async function reprofile(store: Store, run: ScoreRun, bundle: BundleJson, spec: SourceSpec, chunkSize: number): Promise<RunProfile & { source: string }> {
  const profiler = new BatchProfiler(bundle);
  const source = await openSource(spec);
  try {
    for await (const chunk of source.chunks({ columns: profiler.columns, chunkSize, skipRows: 0 })) profiler.add(chunk.columns, chunk.size);
  } finally {
    await source.close();
  }
  const scoreBins = new Array<number>(bundle.reference.score.edges.length + 1).fill(0);
  for await (const page of iterateScores(store, run.run_id))
    binScores(
      bundle.reference.score.edges,
      page.map((s) => Number(s.probability)),
      scoreBins,
    );
  return { profile: profiler.profile(), score_bins: scoreBins, source: source.description };
}

/** The alerts a drift report raises: one per finding at warn or alert. */
export function driftAlerts(report: DriftReport): AlertInput[] {
  return report.findings
    .filter((f) => f.severity !== "ok")
    .map((f) => ({
      rule: f.kind === "score" ? "drift.score" : f.kind === "quarantine" ? "drift.quarantine" : "drift.feature",
      severity: f.severity === "alert" ? "alert" : "warn",
      subject: f.feature,
      message: f.kind === "quarantine" ? f.reason : `${f.feature} drifted in run ${report.run_id}: ${f.reason}`,
      details: { psi: f.psi, ks: f.ks, chi_square: f.chi_square, share: f.share, rows: f.rows, unseen_share: f.unseen_share },
      modelName: report.model_name,
      modelVersion: report.model_version,
      runId: report.run_id,
    }));
}

/** Check a run's drift, store the report and raise its alerts (what the CLI and the daily job call). */
export async function checkDrift(deps: DriftDeps, runRef: string, options: CheckDriftOptions = {}): Promise<{ report: DriftReport; alerts: RaisedAlert[] }> {
  const report = await driftOfRun(deps, runRef, options);
  const alerts = deps.alerts === undefined ? [] : await raiseAlerts(deps.store, driftAlerts(report), deps.alerts);
  return { report, alerts };
}
