import type { ColumnType } from "kysely";

/** Tables of the store. Timestamps are ISO-8601 text so SQLite and PostgreSQL hold the same values. */
export interface ScoreRunsTable {
  run_id: string;
  kind: "daily" | "monthly";
  as_of: string;
  model_name: string;
  model_version: string;
  source: string;
  status: "running" | "complete" | "failed";
  started_at: string;
  finished_at: string | null;
  rows_read: number;
  rows_scored: number;
  rows_quarantined: number;
  /** Input rows already handled (scored or quarantined) and committed; a resumed run skips them. */
  checkpoint_rows: number;
  duration_ms: number | null;
  error: string | null;
  /** Which process is scoring this run (`host:pid`), and until when its claim holds without renewal. */
  lease_owner: string | null;
  lease_expires_at: string | null;
  /** The input's identity as JSON (see src/scoring/input-identity.ts); null on runs stored before migration 006. */
  input: string | null;
  /** A running hash of the ids of the first `checkpoint_rows` input rows, in input order (null before 006). */
  input_fingerprint: string | null;
  /** Set on a re-run's own run: the run whose scores it takes over when it completes (null otherwise; 019). */
  replaces: string | null;
  /** When `churnops prune` removed this run's scores and quarantined rows (its record and profile stay; 019). */
  pruned_at: string | null;
}

/** The drift profile of a run's input and scores, gathered while scoring (JSON; see src/monitoring/drift.ts). */
export interface RunProfilesTable {
  run_id: string;
  profile: string;
}

/**
 * The scores of every run, as readers see them: since migration 020 a VIEW over score_rows (compact: run key,
 * band code) joined to score_runs and score_bands. `model_name`/`model_version` are the
 * run's, `scored_at` is the run's start. An INSERT or DELETE on it reaches score_rows through its triggers.
 */
export interface ScoresTable {
  run_id: string;
  /** The run's key (score_runs.run_key, 020): what a query of one run's scores filters on (see scoresOfRun). */
  run_key: ColumnType<number, never, never>;
  customer_id: string;
  probability: number;
  band: string;
  decision: number;
  model_name: string;
  model_version: string;
  scored_at: string;
  /** JSON list of the top reasons (migration 016); null when scored without reasons. */
  reasons: ColumnType<string | null, string | null | undefined, string | null>;
  /** One byte per categorical feature of the run's bundle (020; see src/store/score-features.ts); null if not stored. */
  features: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
}

/** A stored score, compact (migration 020): what the `scores` view reads. */
export interface ScoreRowsTable {
  run_key: number;
  customer_id: string;
  probability: number;
  band_code: number;
  decision: number;
  reasons: string | null;
  features: Uint8Array | null;
}

/** Band labels by code (020). */
export interface ScoreBandsTable {
  band_code: ColumnType<number, number | undefined, never>;
  band: string;
}

export interface QuarantineTable {
  run_id: string;
  row_number: number;
  customer_id: string | null;
  reason: string;
}

export interface PredictionsTable {
  /** A UUID made by the server; text so both dialects agree. */
  id: string;
  request_id: string;
  customer_id: string;
  variant: string;
  model_name: string;
  model_version: string;
  probability: number;
  band: string;
  decision: number;
  latency_ms: number;
  shadow: number;
  created_at: string;
}

/** A planned retention campaign; `rule`, `params` and `counts` are JSON text. */
export interface CampaignsTable {
  name: string;
  run_id: string;
  as_of: string;
  model_name: string;
  model_version: string;
  rule: string;
  ranking: "risk" | "expected_value" | "uplift";
  params: string;
  seed: number;
  budget: number | null;
  control_share: number;
  cooldown_days: number;
  offer: string | null;
  offer_cost: number | null;
  counts: string;
  treated: number;
  control: number;
  planned_at: string;
}

export interface CampaignMembersTable {
  campaign: string;
  customer_id: string;
  arm: "treatment" | "control";
  rank: number;
  probability: number;
  band: string;
  model_version: string;
  value: number | null;
  expected_value: number | null;
  planned_at: string;
  /** The playbook's offer for this member, treated or control (migration 025); null without a playbook. */
  offer: ColumnType<string | null, string | null | undefined, string | null>;
  /** The reason feature whose rule chose the offer; null when no rule matched (or no playbook). */
  offer_reason: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Uplift targeting (migration 021): what the uplift model predicted for a member and how it was chosen. */
export interface CampaignUpliftMembersTable {
  campaign: string;
  customer_id: string;
  uplift: number;
  uplift_model_name: string;
  uplift_model_version: string;
  selected_by: "ranking" | "exploration";
}

/** The outbox: one row per treated member; `state` moves pending → sending → delivered | dead. */
export interface CampaignMessagesTable {
  campaign: string;
  customer_id: string;
  idempotency_key: string;
  payload: string;
  state: "pending" | "sending" | "delivered" | "dead";
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  /** Where it went: `webhook:<url>` or `file:<path>`. */
  target: string | null;
  last_error: string | null;
  response_status: number | null;
  created_at: string;
  delivered_at: string | null;
}

export interface OptOutsTable {
  customer_id: string;
  source: string;
  opted_out_at: string;
}

export interface OutcomesTable {
  customer_id: string;
  observed_at: string;
  churned: number;
  source: string;
  ingested_at: string;
}

export interface JobLocksTable {
  name: string;
  owner: string;
  acquired_at: string;
  expires_at: string;
}

export interface DailyRunsTable {
  date: string;
  status: "running" | "complete" | "failed";
  kind: "daily" | "monthly";
  attempts: number;
  started_at: string;
  finished_at: string | null;
  summary: string | null;
  error: string | null;
}

/** One drift report per score run; `report` is the JSON the CLI prints. */
export interface DriftReportsTable {
  run_id: string;
  model_name: string;
  model_version: string;
  as_of: string;
  severity: "ok" | "warn" | "alert";
  max_psi: number | null;
  rows_profiled: number;
  report: string;
  created_at: string;
}

/** Realised performance of a model version in a score month, by label policy; `report` is JSON. */
export interface PerformanceReportsTable {
  model_name: string;
  model_version: string;
  /** YYYY-MM */
  month: string;
  labels: string;
  run_id: string;
  labelled: number;
  recall: number | null;
  precision: number | null;
  roc_auc: number | null;
  report: string;
  computed_at: string;
}

/** An alert; `key` (rule, subject, severity, day) makes it one per condition per day. */
export interface AlertsTable {
  key: string;
  rule: string;
  severity: "warn" | "alert";
  subject: string;
  /** YYYY-MM-DD */
  day: string;
  message: string;
  details: string;
  model_name: string | null;
  model_version: string | null;
  run_id: string | null;
  created_at: string;
  delivery_attempts: number;
  delivered_at: string | null;
  delivery_error: string | null;
}

/** Every promotion-gate decision with both models' holdout numbers (JSON) and the reason. */
export interface GateDecisionsTable {
  id: string;
  decided_at: string;
  model_name: string;
  champion_version: string;
  challenger_version: string;
  decision: "promote" | "refuse";
  reason: string;
  trigger: string;
  holdout: string;
  holdout_rows: number;
  champion_metrics: string;
  challenger_metrics: string;
  promoted: number;
}

export interface PerformanceEstimatesTable {
  run_id: string;
  model_name: string;
  model_version: string;
  as_of: string;
  rows: number;
  /** 1 when the model's calibration makes the estimate trustworthy (estimate.ts checkCalibration). */
  trusted: number;
  status: string;
  recall: number | null;
  precision: number | null;
  roc_auc: number | null;
  expected_churners: number;
  /** The whole EstimateReport as JSON; decoded only by src/store/estimates.ts. */
  report: string;
  computed_at: string;
}

/** The day's snapshot as the daily job kept it (a Parquet copy under <home>/snapshots); `columns` is JSON. */
export interface SnapshotsTable {
  date: string;
  run_id: string;
  /** Where the daily job read it (a path, or a URL without its password). */
  source: string;
  path: string;
  rows: number;
  columns: string;
  kept_at: string;
}

/** One `dataset build`: its parameters, counts (`summary`, JSON) and the fingerprint of its rows. */
export interface DatasetBuildsTable {
  fingerprint: string;
  built_at: string;
  horizon_days: number;
  from_date: string | null;
  to_date: string | null;
  labels_through: string | null;
  rows: number;
  positives: number;
  summary: string;
  out: string | null;
}

/** A decision of the retrain cycle: why it ran, what it concluded, and the gate decision when there was one. */
export interface RetrainDecisionsTable {
  id: string;
  date: string;
  decided_at: string;
  model_name: string;
  trigger: string;
  outcome: "not_enough_labels" | "refused" | "promoted" | "not_promoted_dry_run" | "failed";
  reason: string;
  dataset_fingerprint: string | null;
  dataset_rows: number | null;
  dataset_positives: number | null;
  gate_decision_id: string | null;
  champion_version: string | null;
  challenger_version: string | null;
}

/** Every customer id the store has scored, once, for the risk list's id search (migration 026). */
export interface SearchIdsTable {
  customer_id: string;
}

/** The runs whose ids are in search_ids (src/store/id-search.ts). */
export interface SearchIndexedRunsTable {
  run_id: string;
  indexed_at: string;
}

export interface Database {
  search_ids: SearchIdsTable;
  search_indexed_runs: SearchIndexedRunsTable;
  score_runs: ScoreRunsTable;
  scores: ScoresTable;
  score_rows: ScoreRowsTable;
  score_bands: ScoreBandsTable;
  quarantine: QuarantineTable;
  run_profiles: RunProfilesTable;
  predictions: PredictionsTable;
  campaigns: CampaignsTable;
  campaign_members: CampaignMembersTable;
  campaign_messages: CampaignMessagesTable;
  campaign_uplift_members: CampaignUpliftMembersTable;
  opt_outs: OptOutsTable;
  outcomes: OutcomesTable;
  job_locks: JobLocksTable;
  daily_runs: DailyRunsTable;
  drift_reports: DriftReportsTable;
  performance_reports: PerformanceReportsTable;
  alerts: AlertsTable;
  gate_decisions: GateDecisionsTable;
  performance_estimates: PerformanceEstimatesTable;
  snapshots: SnapshotsTable;
  dataset_builds: DatasetBuildsTable;
  retrain_decisions: RetrainDecisionsTable;
}
