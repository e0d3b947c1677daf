import type { MonitoringConfig } from "../config.js";
import { type ColumnValues, cellOf, isCodeColumn, isNumberColumn } from "../data/columns.js";
import type { BundleJson, FeatureProfile } from "../model/bundle.js";
import { binIndex, chiSquareTwoSample, ksPValue, ksStatistic, psi, shares } from "./stats.js";

/**
 * Drift of a scored batch against the reference profile in its model's bundle. Decisions are made on effect
 * sizes (PSI against documented thresholds), and a PSI only counts when its test (KS for numeric features and
 * the score, chi-square for categorical ones) says the difference is not sampling noise. A large batch with a
 * trivial shift stays `ok` (small PSI); a tiny batch with a noisy PSI stays `ok` (no significance).
 */
export type Severity = "ok" | "warn" | "alert";
export type DriftThresholds = MonitoringConfig["drift"];

const SEVERITY_ORDER: Record<Severity, number> = { ok: 0, warn: 1, alert: 2 };

export function worst(severities: Iterable<Severity>): Severity {
  let out: Severity = "ok";
  for (const s of severities) if (SEVERITY_ORDER[s] > SEVERITY_ORDER[out]) out = s;
  return out;
}

/** Counts of one numeric feature over the reference bins. `invalid`: present but not a finite number. */
export interface NumericCounts {
  kind: "numeric";
  bins: number[];
  missing: number;
  invalid: number;
  sum: number;
}

/** Counts of one categorical feature: known categories, categories the model never saw, missing values. */
export interface CategoricalCounts {
  kind: "categorical";
  counts: Record<string, number>;
  unseen: number;
  /** The most frequent unseen values (at most UNSEEN_EXAMPLES distinct ones are tracked). */
  unseenExamples: Record<string, number>;
  missing: number;
}

export type FeatureCounts = NumericCounts | CategoricalCounts;

export interface BatchProfile {
  rows: number;
  features: Record<string, FeatureCounts>;
}

const UNSEEN_EXAMPLES = 20;

function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === "string" && v.trim() === "");
}

function asNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string") {
    const t = v.trim();
    return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : Number.NaN;
  }
  return Number.NaN;
}

/**
 * Profiles raw input rows (every row read, valid or not: unseen categories are exactly what drift must see)
 * over the reference bins of a bundle, chunk by chunk, in constant memory. Columns come in any shape a reader
 * delivers (plain values, numbers, category codes): batch scoring profiles the chunks it scores, and a drift
 * check that must read a run's input again profiles plain values, with the same counts either way.
 */
export class BatchProfiler {
  private readonly counts = new Map<string, FeatureCounts>();
  private readonly known = new Map<string, ReadonlySet<string>>();
  private total = 0;

  /** `from`: a profile to continue (a resumed run's, as stored with its last checkpoint). */
  constructor(
    private readonly bundle: BundleJson,
    from?: BatchProfile,
  ) {
    for (const f of bundle.schema.features) {
      const ref = bundle.reference.features[f.name];
      if (ref === undefined) continue;
      if (ref.kind === "numeric")
        this.counts.set(f.name, { kind: "numeric", bins: new Array<number>(ref.edges.length + 1).fill(0), missing: 0, invalid: 0, sum: 0 });
      else {
        this.counts.set(f.name, { kind: "categorical", counts: {}, unseen: 0, unseenExamples: {}, missing: 0 });
        this.known.set(f.name, new Set(Object.keys(ref.freqs)));
      }
    }
    if (from !== undefined) {
      for (const [name, counts] of Object.entries(from.features))
        if (this.counts.get(name)?.kind === counts.kind) this.counts.set(name, structuredClone(counts));
      this.total = from.rows;
    }
  }

  /** Feature columns the profiler reads. */
  get columns(): string[] {
    return [...this.counts.keys()];
  }

  add(columns: ReadonlyMap<string, ColumnValues>, size: number): void {
    for (const [name, counts] of this.counts) {
      const values = columns.get(name);
      if (values === undefined) throw new Error(`chunk lacks column ${name}`);
      const ref = this.bundle.reference.features[name] as FeatureProfile;
      if (counts.kind === "numeric" && ref.kind === "numeric") addNumeric(counts, ref.edges, values, size);
      else if (counts.kind === "categorical") addCategorical(counts, this.known.get(name) as ReadonlySet<string>, values, size);
    }
    this.total += size;
  }

  profile(): BatchProfile {
    return { rows: this.total, features: Object.fromEntries(this.counts) };
  }
}

function addNumeric(counts: NumericCounts, edges: readonly number[], values: ColumnValues, size: number): void {
  const count = (x: number): void => {
    if (!Number.isFinite(x)) counts.invalid++;
    else {
      const b = binIndex(edges, x);
      counts.bins[b] = (counts.bins[b] ?? 0) + 1;
      counts.sum += x;
    }
  };
  if (isNumberColumn(values)) {
    const { values: xs, missing } = values;
    for (let i = 0; i < size; i++) {
      if (missing !== null && missing[i] === 1) counts.missing++;
      else count(xs[i] as number);
    }
    return;
  }
  for (let i = 0; i < size; i++) {
    const v = cellOf(values, i);
    if (isMissing(v)) counts.missing++;
    else count(asNumber(v));
  }
}

function addCategorical(counts: CategoricalCounts, known: ReadonlySet<string>, values: ColumnValues, size: number): void {
  const count = (v: unknown): void => {
    if (isMissing(v)) {
      counts.missing++;
      return;
    }
    const s = String(v);
    if (known.has(s)) counts.counts[s] = (counts.counts[s] ?? 0) + 1;
    else {
      counts.unseen++;
      if (s in counts.unseenExamples || Object.keys(counts.unseenExamples).length < UNSEEN_EXAMPLES)
        counts.unseenExamples[s] = (counts.unseenExamples[s] ?? 0) + 1;
    }
  };
  if (isCodeColumn(values)) {
    // Tallied per code first: one string lookup per category and chunk, not per row.
    const perCode = new Float64Array(values.categories.length + 1);
    for (let i = 0; i < size; i++) {
      const code = values.codes[i] as number;
      if (code > 0) perCode[code] = (perCode[code] as number) + 1;
      else count(values.raw.get(i) ?? null);
    }
    values.categories.forEach((category, k) => {
      const n = perCode[k + 1] as number;
      if (n === 0) return;
      if (known.has(category)) counts.counts[category] = (counts.counts[category] ?? 0) + n;
      else for (let j = 0; j < n; j++) count(category);
    });
    return;
  }
  for (let i = 0; i < size; i++) count(cellOf(values, i));
}

/**
 * What a run keeps for drift, saved with each of its checkpoints: the input profile and the scores' histogram
 * over the reference score bins. A few hundred numbers, so a drift check never reads the input again.
 */
export interface RunProfile {
  profile: BatchProfile;
  score_bins: number[];
}

/** Counts of scores over the reference score bins. */
export function binScores(edges: readonly number[], probabilities: Iterable<number>, into?: number[]): number[] {
  const bins = into ?? new Array<number>(edges.length + 1).fill(0);
  for (const p of probabilities) {
    const b = binIndex(edges, p);
    bins[b] = (bins[b] ?? 0) + 1;
  }
  return bins;
}

export interface DriftFinding {
  /** A feature name, `score` (the model's output) or `quarantined_share`. */
  feature: string;
  kind: "numeric" | "categorical" | "score" | "quarantine";
  severity: Severity;
  /** Rows the statistics were computed on. */
  rows: number;
  psi: number | null;
  ks: { statistic: number; p_value: number } | null;
  chi_square: { statistic: number; df: number; p_value: number } | null;
  missing_share: number | null;
  reference_missing_share: number | null;
  /** Categorical: share of values the model never saw; numeric: share of values that are not numbers. */
  unseen_share: number | null;
  unseen_examples: Record<string, number> | null;
  mean: number | null;
  reference_mean: number | null;
  /** Quarantine: share of rows quarantined. */
  share: number | null;
  reason: string;
}

function levelOf(psiValue: number, t: DriftThresholds): Severity {
  if (psiValue >= t.psi_alert) return "alert";
  if (psiValue >= t.psi_warn) return "warn";
  return "ok";
}

/** Severity from the effect size, kept only when the test is significant. */
function judge(psiValue: number, pValue: number, test: string, t: DriftThresholds): { severity: Severity; reason: string } {
  const level = levelOf(psiValue, t);
  const psiText = `PSI ${psiValue.toFixed(3)}`;
  if (level === "ok") return { severity: "ok", reason: `${psiText} < ${t.psi_warn}` };
  if (!(pValue < t.p_value))
    return { severity: "ok", reason: `${psiText} but the ${test} test is not significant (p = ${pValue.toPrecision(3)}): too few rows to tell` };
  const bound = level === "alert" ? t.psi_alert : t.psi_warn;
  return { severity: level, reason: `${psiText} ≥ ${bound} (${test} p = ${pValue.toPrecision(3)})` };
}

const blank = {
  psi: null,
  ks: null,
  chi_square: null,
  missing_share: null,
  reference_missing_share: null,
  unseen_share: null,
  unseen_examples: null,
  mean: null,
  reference_mean: null,
  share: null,
} as const;

/**
 * One numeric feature: PSI over the reference bins plus a missing bucket (a surge of missing values is drift
 * too), and the KS statistic over the binned cumulative distributions of the present values.
 */
export function numericFinding(
  feature: string,
  ref: Extract<FeatureProfile, { kind: "numeric" }>,
  counts: NumericCounts,
  referenceRows: number,
  t: DriftThresholds,
): DriftFinding {
  const present = counts.bins.reduce((a, b) => a + b, 0);
  const rows = present + counts.missing + counts.invalid;
  const refShares = [...ref.freqs.map((f) => f * (1 - ref.missing_share)), ref.missing_share];
  const batchShares = shares([...counts.bins, counts.missing + counts.invalid]);
  const psiValue = psi(refShares, batchShares);
  const d = ksStatistic(ref.freqs, shares(counts.bins));
  const refPresent = Math.max(1, Math.round(referenceRows * (1 - ref.missing_share)));
  const pKs = present > 0 ? ksPValue(d, refPresent, present) : 1;
  // The missing bucket is judged by chi-square alongside: KS cannot see missing values.
  const refMissing = referenceRows * ref.missing_share;
  const pMissing = chiSquareTwoSample([referenceRows - refMissing, refMissing], [present, counts.missing + counts.invalid]).pValue;
  const verdict = judge(psiValue, Math.min(pKs, pMissing), "KS", t);
  return {
    ...blank,
    feature,
    kind: "numeric",
    rows,
    psi: psiValue,
    ks: { statistic: d, p_value: pKs },
    missing_share: rows > 0 ? counts.missing / rows : 0,
    reference_missing_share: ref.missing_share,
    unseen_share: rows > 0 ? counts.invalid / rows : 0,
    mean: present > 0 ? counts.sum / present : null,
    reference_mean: ref.mean ?? null,
    ...verdict,
  };
}

/** One categorical feature: PSI and chi-square over its categories plus an `unseen` and a `missing` bucket. */
export function categoricalFinding(
  feature: string,
  ref: Extract<FeatureProfile, { kind: "categorical" }>,
  counts: CategoricalCounts,
  referenceRows: number,
  t: DriftThresholds,
): DriftFinding {
  const categories = Object.keys(ref.freqs);
  const batchCounts = [...categories.map((c) => counts.counts[c] ?? 0), counts.unseen, counts.missing];
  const rows = batchCounts.reduce((a, b) => a + b, 0);
  const refShares = [...categories.map((c) => (ref.freqs[c] ?? 0) * (1 - ref.missing_share)), 0, ref.missing_share];
  const psiValue = psi(refShares, shares(batchCounts));
  const chi = chiSquareTwoSample(
    refShares.map((s) => s * referenceRows),
    batchCounts,
  );
  const verdict = judge(psiValue, chi.pValue, "chi-square", t);
  return {
    ...blank,
    feature,
    kind: "categorical",
    rows,
    psi: psiValue,
    chi_square: { statistic: chi.statistic, df: chi.df, p_value: chi.pValue },
    missing_share: rows > 0 ? counts.missing / rows : 0,
    reference_missing_share: ref.missing_share,
    unseen_share: rows > 0 ? counts.unseen / rows : 0,
    unseen_examples: counts.unseen > 0 ? counts.unseenExamples : null,
    ...verdict,
  };
}

/** The score distribution against the reference scores: PSI and KS over the reference score bins. */
export function scoreFinding(ref: BundleJson["reference"]["score"], bins: readonly number[], referenceRows: number, t: DriftThresholds): DriftFinding {
  const rows = bins.reduce((a, b) => a + b, 0);
  const batchShares = shares(bins);
  const psiValue = psi(ref.freqs, batchShares);
  const d = ksStatistic(ref.freqs, batchShares);
  const p = rows > 0 ? ksPValue(d, referenceRows, rows) : 1;
  return { ...blank, feature: "score", kind: "score", rows, psi: psiValue, ks: { statistic: d, p_value: p }, ...judge(psiValue, p, "KS", t) };
}

/** The share of rows validation refused: no reference (training data had none), so plain share thresholds. */
export function quarantineFinding(rowsRead: number, rowsQuarantined: number, t: DriftThresholds): DriftFinding {
  const share = rowsRead > 0 ? rowsQuarantined / rowsRead : 0;
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  let severity: Severity = "ok";
  let reason = `${pct(share)} of rows quarantined (< ${pct(t.quarantine_warn)})`;
  if (share >= t.quarantine_alert) {
    severity = "alert";
    reason = `${pct(share)} of rows quarantined (≥ ${pct(t.quarantine_alert)})`;
  } else if (share >= t.quarantine_warn) {
    severity = "warn";
    reason = `${pct(share)} of rows quarantined (≥ ${pct(t.quarantine_warn)})`;
  }
  return { ...blank, feature: "quarantined_share", kind: "quarantine", rows: rowsRead, share, severity, reason };
}

export interface DriftInput {
  bundle: BundleJson;
  profile: BatchProfile;
  scoreBins: readonly number[];
  rowsRead: number;
  rowsQuarantined: number;
  thresholds: DriftThresholds;
}

export interface DriftSummary {
  severity: Severity;
  /** Largest PSI over the input features (not the score). */
  max_feature_psi: number | null;
  /** Features (and `score`) at warn or alert, worst first. */
  drifted: string[];
  findings: DriftFinding[];
}

/** Every finding of a batch, worst first (severity, then PSI). Pure: the same counts give the same report. */
export function assessDrift(input: DriftInput): DriftSummary {
  const { bundle, profile, thresholds } = input;
  const referenceRows = bundle.reference.n_rows ?? 1000;
  const findings: DriftFinding[] = [];
  for (const f of bundle.schema.features) {
    const ref = bundle.reference.features[f.name];
    const counts = profile.features[f.name];
    if (ref === undefined || counts === undefined) continue;
    if (ref.kind === "numeric" && counts.kind === "numeric") findings.push(numericFinding(f.name, ref, counts, referenceRows, thresholds));
    else if (ref.kind === "categorical" && counts.kind === "categorical") findings.push(categoricalFinding(f.name, ref, counts, referenceRows, thresholds));
  }
  const featurePsis = findings.map((f) => f.psi ?? 0);
  findings.push(scoreFinding(bundle.reference.score, input.scoreBins, referenceRows, thresholds));
  findings.push(quarantineFinding(input.rowsRead, input.rowsQuarantined, thresholds));
  findings.sort((a, b) => SEVERITY_ORDER[b.severity] - SEVERITY_ORDER[a.severity] || (b.psi ?? -1) - (a.psi ?? -1));
  return {
    severity: worst(findings.map((f) => f.severity)),
    max_feature_psi: featurePsis.length > 0 ? Math.max(...featurePsis) : null,
    drifted: findings.filter((f) => f.severity !== "ok").map((f) => f.feature),
    findings,
  };
}
