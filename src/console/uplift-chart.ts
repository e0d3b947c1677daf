import type { EffectReport } from "../campaigns/report.js";
import type { UpliftPlanSource } from "../campaigns/uplift-plan.js";
import type { Config } from "../config.js";
import type { Store } from "../store/db.js";
import { registeredSchema, upliftModelName } from "../uplift/schema.js";
import { scoreRunUplift, type UpliftScores } from "../uplift/score.js";
import { seriesChart } from "./charts.js";
import type { Translator } from "./i18n.js";

const SCORES_TTL_MS = 10 * 60_000;

/**
 * The builder's uplift ranking: the champion uplift model's scores of a run, kept for ten minutes per run so
 * that the live preview does not start the trainer on every change of the form.
 */
export function consoleUpliftSource(store: Store, config: Config): (explorationShare: number) => UpliftPlanSource {
  const memo = new Map<string, { at: number; scores: Promise<UpliftScores> }>();
  const modelName = upliftModelName(config);
  return (explorationShare) => ({
    modelName,
    model: "champion",
    explorationShare,
    scores: async (run) => {
      const hit = memo.get(run.run_id);
      if (hit !== undefined && Date.now() - hit.at < SCORES_TTL_MS) return hit.scores;
      const scores = (async () =>
        scoreRunUplift(store, config, run, { modelName, model: "champion", idColumn: (await registeredSchema(config)(run)).idColumn }))();
      memo.set(run.run_id, { at: Date.now(), scores });
      scores.catch(() => memo.delete(run.run_id));
      return scores;
    },
  });
}

/**
 * The results page's Qini curve for a campaign planned by uplift: churners the offer prevented per member, among
 * members ranked by predicted uplift (highest first), against the random ranking's straight line to the same end.
 */
export function qiniChart(report: EffectReport, i: Translator): string | null {
  const curve = report.uplift?.qiniCurve ?? [];
  if (curve.length < 2) return null;
  const end = (curve[curve.length - 1] as [number, number])[1];
  return seriesChart({
    width: 640,
    height: 220,
    label: i.t("campaigns.qini_desc"),
    labels: curve.map(([x]) => i.pct(x, 0)),
    series: [
      { name: i.t("campaigns.qini_model"), values: curve.map(([, y]) => y) },
      { name: i.t("campaigns.qini_random"), values: curve.map(([x]) => x * end) },
    ],
    formatValue: (n) => i.pct(n, 1),
  });
}
