import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { csvCell } from "../../csv-safe.js";
import type { Store } from "../../store/db.js";
import { iterateRisk, parseRiskFilter, type RiskRow } from "../../store/read/risk.js";
import { requireScores, resolveRun } from "../../store/runs.js";

export const RISK_CSV_COLUMNS = ["customer_id", "probability", "band", "decision", "run_id", "model_version"] as const;

/**
 * One page of rows as CSV lines. Cells go through the shared csvCell (quoting, formulas neutralised); the run's
 * id and model version are the same on every row of a run, and bands are few, so those cells are made once.
 */
function csvLines(rows: readonly RiskRow[]): string {
  const tails = new Map<string, string>();
  const bands = new Map<string, string>();
  let out = "";
  for (const r of rows) {
    const key = `${r.run_id}\u0000${r.model_version}`;
    let tail = tails.get(key);
    if (tail === undefined) {
      tail = `,${csvCell(r.run_id)},${csvCell(r.model_version)}\n`;
      tails.set(key, tail);
    }
    let band = bands.get(r.band);
    if (band === undefined) {
      band = csvCell(r.band);
      bands.set(r.band, band);
    }
    out += `${csvCell(r.customer_id)},${r.probability},${band},${r.decision}${tail}`;
  }
  return out;
}

/** `/risk.csv`: exactly the rows of the risk list for the same query parameters, streamed page by page. */
export function riskExportRoutes(app: FastifyInstance, store: Store): void {
  app.get("/risk.csv", async (request, reply) => {
    const filter = parseRiskFilter(request.query as Record<string, unknown>);
    // Resolved before the first byte: an unknown run is a 404, not a broken download.
    const run = requireScores(await resolveRun(store, filter.run));
    const pinned = { ...filter, run: run.run_id };
    async function* body(): AsyncGenerator<string> {
      yield `${RISK_CSV_COLUMNS.join(",")}\n`;
      for await (const page of iterateRisk(store, pinned)) yield csvLines(page);
    }
    reply.header("content-type", "text/csv; charset=utf-8");
    reply.header("content-disposition", `attachment; filename="risk-${run.run_id.replace(/[^A-Za-z0-9._-]/g, "_")}.csv"`);
    return reply.send(Readable.from(body()));
  });
}
