import type { UpliftReport } from "./uplift-report.js";

const pct = (x: number | null): string => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);

/** The uplift part of `campaign report` for people: predicted vs realised, per group and per predicted decile. */
export function formatUpliftReport(u: UpliftReport): string[] {
  const g = u.byGroup;
  return [
    `Uplift targeting (model ${u.model.name} v${u.model.version}), ${u.observed} members with outcomes:`,
    `  predicted   ${pct(u.predictedUplift)} lower churn if treated; realised ${pct(u.realisedUplift)} (control − treated churn rate)`,
    `  ranking     ${g.ranking.treated}+${g.ranking.control}: predicted ${pct(g.ranking.predictedUplift)}, realised ${pct(g.ranking.realisedUplift)}`,
    `  exploration ${g.exploration.treated}+${g.exploration.control}: predicted ${pct(g.exploration.predictedUplift)}, realised ${pct(g.exploration.realisedUplift)}`,
    `  qini        ${u.qini === null ? "-" : u.qini.toFixed(4)}`,
    "  decile  members  treated+control  predicted  realised",
    ...u.deciles.map(
      (d) =>
        `  ${String(d.decile).padStart(6)}  ${String(d.members).padStart(7)}  ${`${d.treated}+${d.control}`.padStart(15)}  ${pct(d.predictedUplift).padStart(9)}  ${pct(d.realisedUplift).padStart(8)}`,
    ),
  ];
}
