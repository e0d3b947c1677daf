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
}

export interface ScoresTable {
  run_id: string;
  customer_id: string;
  probability: number;
  band: string;
  decision: number;
  model_name: string;
  model_version: string;
  scored_at: string;
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

export interface Database {
  score_runs: ScoreRunsTable;
  scores: ScoresTable;
  quarantine: QuarantineTable;
  predictions: PredictionsTable;
}
