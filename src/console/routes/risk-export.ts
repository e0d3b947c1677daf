import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { Store } from "../../store/db.js";
import { iterateRisk, parseRiskFilter, type RiskRow } from "../../store/read/risk.js";
import { requireScores, resolveRun } from "../../store/runs.js";

export const RISK_CSV_COLUMNS = ["customer_id", "probability", "band", "decision", "run_id", "model_version"] as const;

/** RFC 4180 quoting, and a leading =, +, - or @ defused so a spreadsheet never runs a cell as a formula. */
export function csvCell(value: string | number): string {
  const text = String(value);
  const safe = typeof value === "string" && /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function csvLines(rows: readonly RiskRow[]): string {
  let out = "";
  for (const r of rows) out += `${csvCell(r.customer_id)},${r.probability},${csvCell(r.band)},${r.decision},${csvCell(r.run_id)},${csvCell(r.model_version)}\n`;
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
