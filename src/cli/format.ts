import type { Band } from "../model/bundle.js";

/** A model's bands with their cut-offs, highest first: `high p ≥ 0.600 · medium p ≥ 0.300 · low p < 0.300`. */
export function describeBands(bands: readonly Band[]): string {
  return bands
    .map((b, i) => (i === bands.length - 1 && i > 0 ? `${b.name} p < ${(bands[i - 1] as Band).min.toFixed(3)}` : `${b.name} p ≥ ${b.min.toFixed(3)}`))
    .join(" · ");
}

/** A table: a header row, then the rows, each column padded to its widest cell (the last column is not padded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
