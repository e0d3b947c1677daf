import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { csvCell } from "../../csv-safe.js";
import type { Store } from "../../store/db.js";
import { reasonsOf, type StoredReason } from "../../store/read/customer-reasons.js";
import { iterateRisk, type RiskRow } from "../../store/read/risk.js";
import { requireScores } from "../../store/runs.js";
import type { BundleOfRun } from "../plugin.js";
import { resolveRiskFilter } from "../risk-filter.js";

export const RISK_CSV_COLUMNS = ["customer_id", "probability", "band", "decision", "run_id", "model_version"] as const;

function reasonHeader(width: number): string[] {
  return Array.from({ length: width }, (_, k) => [`reason_${k + 1}`, `reason_${k + 1}_text`]).flat();
}

/**
 * One page of rows as CSV lines. Cells go through the shared csvCell (quoting, formulas neutralised); the run's
 * id and model version are the same on every row of a run, and bands are few, so those cells are made once.
 */
function csvLines(rows: readonly RiskRow[], reasons: Map<string, StoredReason[]> | null, width: number): string {
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
    if (reasons === null) out += `${csvCell(r.customer_id)},${r.probability},${band},${r.decision}${tail}`;
    else out += `${csvCell(r.customer_id)},${r.probability},${band},${r.decision}${tail.slice(0, -1)}${reasonCells(reasons.get(r.customer_id), width)}\n`;
  }
  return out;
}

/** reason_k and reason_k_text for k = 1..width, as `score --reasons N --out` writes them (empty past the last). */
function reasonCells(reasons: readonly StoredReason[] | undefined, width: number): string {
  let out = "";
  for (let k = 0; k < width; k++) {
    const r = reasons?.[k];
    out += r === undefined ? ",," : `,${csvCell(r.feature)},${csvCell(r.text)}`;
  }
  return out;
}

/**
 * `/risk.csv`: exactly the rows of the risk list for the same query parameters, streamed page by page. A run
 * scored with reasons adds reason_1..N and reason_1..N_text (N: the most reasons any customer of the first page
 * has; the first page is the list's top, whose customers have the most features raising their risk).
 */
export function riskExportRoutes(app: FastifyInstance, store: Store, bundleOf: BundleOfRun): void {
  app.get("/risk.csv", async (request, reply) => {
    // Resolved before the first byte: an unknown run is a 404 and a bad filter a 400, not a broken download.
    const { filter, run: resolved } = await resolveRiskFilter(store, request.query as Record<string, unknown>, bundleOf);
    const run = requireScores(resolved);
    const pinned = { ...filter, run: run.run_id };
    async function* body(): AsyncGenerator<string> {
      let width: number | null = null;
      let withReasons = true;
      for await (const page of iterateRisk(store, pinned)) {
        const reasons: Map<string, StoredReason[]> | null = withReasons
          ? await reasonsOf(
              store,
              run.run_id,
              page.map((r) => r.customer_id),
            )
          : null;
        if (width === null) {
          width = Math.max(0, ...[...(reasons ?? new Map<string, StoredReason[]>()).values()].map((r) => r.length));
          withReasons = reasons !== null && reasons.size > 0;
          yield `${[...RISK_CSV_COLUMNS, ...reasonHeader(withReasons ? width : 0)].join(",")}\n`;
        }
        yield csvLines(page, withReasons ? reasons : null, width);
      }
      if (width === null) yield `${RISK_CSV_COLUMNS.join(",")}\n`;
    }
    reply.header("content-type", "text/csv; charset=utf-8");
    reply.header("content-disposition", `attachment; filename="risk-${run.run_id.replace(/[^A-Za-z0-9._-]/g, "_")}.csv"`);
    return reply.send(Readable.from(body()));
  });
}
