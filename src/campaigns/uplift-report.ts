import type { CampaignRow } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { upliftOutcomes } from "../store/uplift.js";

export interface UpliftDecile {
  decile: number;
  members: number;
  treated: number;
  control: number;
  /** Mean predicted uplift of the decile's members with outcomes. */
  predictedUplift: number | null;
  /** Control churn rate − treated churn rate in the decile (null without both arms). */
  realisedUplift: number | null;
}

export interface UpliftReport {
  model: { name: string; version: string };
  /** Members with an outcome observed after the campaign's date. */
  observed: number;
  byGroup: Record<"ranking" | "exploration", { treated: number; control: number; predictedUplift: number | null; realisedUplift: number | null }>;
  predictedUplift: number | null;
  realisedUplift: number | null;
  deciles: UpliftDecile[];
  /** Qini curve of the predicted uplift on the realised outcomes: [share of members, churners prevented per member]. */
  qiniCurve: [number, number][];
  qini: number | null;
}

interface Row {
  arm: "treatment" | "control";
  uplift: number;
  churned: number;
}

function effect(rows: readonly Row[]): { treated: number; control: number; predictedUplift: number | null; realisedUplift: number | null } {
  const t = rows.filter((r) => r.arm === "treatment");
  const c = rows.filter((r) => r.arm === "control");
  const rate = (xs: readonly Row[]) => xs.reduce((a, r) => a + r.churned, 0) / xs.length;
  return {
    treated: t.length,
    control: c.length,
    predictedUplift: rows.length === 0 ? null : rows.reduce((a, r) => a + r.uplift, 0) / rows.length,
    realisedUplift: t.length > 0 && c.length > 0 ? rate(c) - rate(t) : null,
  };
}

/**
 * Qini curve (docs/uplift.md): members by predicted uplift, highest first; after the top k, Q(k) = churners among
 * the control so far × treated so far / control so far − churners among the treated so far; both axes per member.
 * Returns `points` evenly spaced points and the Qini coefficient (area between the curve and the random line).
 */
export function qiniCurve(rows: readonly Row[], points = 21): { curve: [number, number][]; qini: number | null } {
  if (rows.length === 0) return { curve: [], qini: null };
  const sorted = [...rows].sort((a, b) => b.uplift - a.uplift);
  const n = sorted.length;
  const q = new Float64Array(n + 1);
  let nt = 0;
  let nc = 0;
  let ct = 0;
  let cc = 0;
  sorted.forEach((r, i) => {
    if (r.arm === "treatment") {
      nt++;
      ct += r.churned;
    } else {
      nc++;
      cc += r.churned;
    }
    q[i + 1] = ((nc > 0 ? (cc * nt) / nc : 0) - ct) / n;
  });
  let area = 0;
  for (let i = 1; i <= n; i++) area += ((q[i] as number) + (q[i - 1] as number)) / (2 * n);
  const curve: [number, number][] = [];
  for (let p = 0; p < points; p++) {
    const x = p / (points - 1);
    curve.push([x, q[Math.round(x * n)] as number]);
  }
  return { curve, qini: area - (q[n] as number) / 2 };
}

/** For a campaign planned with `--rank-by uplift`: realised uplift by predicted-uplift decile and predicted vs realised. */
export async function upliftReport(store: Store, campaign: CampaignRow): Promise<UpliftReport | null> {
  const all = await upliftOutcomes(store, campaign.name, campaign.as_of);
  if (all.length === 0) return null;
  const rows = all.filter((r): r is typeof r & { churned: number } => r.churned !== null);
  const sorted = [...rows].sort((a, b) => b.uplift - a.uplift);
  const deciles: UpliftDecile[] = [];
  for (let d = 0; d < 10; d++) {
    const part = sorted.slice(Math.floor((d * sorted.length) / 10), Math.floor(((d + 1) * sorted.length) / 10));
    const e = effect(part);
    deciles.push({
      decile: d + 1,
      members: part.length,
      treated: e.treated,
      control: e.control,
      predictedUplift: e.predictedUplift,
      realisedUplift: e.realisedUplift,
    });
  }
  const overall = effect(rows);
  const { curve, qini } = qiniCurve(rows);
  const first = all[0] as (typeof all)[number];
  return {
    model: { name: first.uplift_model_name, version: first.uplift_model_version },
    observed: rows.length,
    byGroup: {
      ranking: effect(rows.filter((r) => r.selected_by === "ranking")),
      exploration: effect(rows.filter((r) => r.selected_by === "exploration")),
    },
    predictedUplift: overall.predictedUplift,
    realisedUplift: overall.realisedUplift,
    deciles: rows.length === 0 ? [] : deciles,
    qiniCurve: curve,
    qini,
  };
}
