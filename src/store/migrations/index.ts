import type { Migration } from "kysely";
import * as m001 from "./001_scoring.js";
import * as m002 from "./002_predictions.js";
import * as m003 from "./003_campaigns.js";
import * as m004 from "./004_daily.js";
import * as m005 from "./005_monitoring.js";
import * as m006 from "./006_run_inputs.js";
import * as m012 from "./012_console_users.js";
import * as m013 from "./013_risk_list_index.js";
import * as m015 from "./015_estimates.js";
import * as m016 from "./016_score_reasons.js";
import * as m017 from "./017_datasets.js";
import * as m018 from "./018_risk_covering_index.js";
import * as m019 from "./019_run_replaces.js";
import * as m020 from "./020_compact_scores.js";
import * as m021 from "./021_campaign_uplift.js";
import * as m025 from "./025_member_offers.js";
import * as m026 from "./026_id_search.js";
import * as m027 from "./027_feature_statistics.js";

/**
 * Every migration, in order. Listed statically (not read from a folder) so the compiled CLI and the tests
 * run the same set. Add a line here for a new migration; never edit one that has shipped.
 */
export const migrations: Record<string, Migration> = {
  "001_scoring": m001,
  "002_predictions": m002,
  "003_campaigns": m003,
  "004_daily": m004,
  "005_monitoring": m005,
  "006_run_inputs": m006,
  "012_console_users": m012,
  "013_risk_list_index": m013,
  "015_estimates": m015,
  "016_score_reasons": m016,
  "017_datasets": m017,
  "018_risk_covering_index": m018,
  "019_run_replaces": m019,
  "020_compact_scores": m020,
  "021_campaign_uplift": m021,
  "025_member_offers": m025,
  "026_id_search": m026,
  "027_feature_statistics": m027,
};
