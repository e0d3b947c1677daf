import type { EffectReport } from "../campaigns/report.js";
import { seriesChart } from "./charts.js";
import type { Translator } from "./i18n.js";

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
