/**
 * Charts as SVG drawn on the server: no script, no chart library in the page, and the CSP stays strict (only
 * presentation attributes, no style attributes). Every chart is an image with a text label for screen readers.
 */

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

interface Frame {
  width: number;
  height: number;
  label: string;
}

const PAD = { left: 56, right: 12, top: 12, bottom: 36 };
const AXIS = "#555";
const BAR = "#2f6db5";
const LINE = "#b5452f";

function svg(frame: Frame, body: string): string {
  const label = escapeXml(frame.label);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${frame.width} ${frame.height}" width="100%" role="img" aria-label="${label}"><title>${label}</title>${body}</svg>`;
}

function text(x: number, y: number, value: string, anchor: "start" | "middle" | "end" = "middle"): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="11" fill="${AXIS}" text-anchor="${anchor}">${escapeXml(value)}</text>`;
}

/** Round numbers for a value axis from 0 to at least `max`. */
function ticks(max: number, count = 4): number[] {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const step = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max + nice / 2; v += nice) out.push(v);
  if ((out[out.length - 1] ?? 0) < max) out.push((out[out.length - 1] ?? 0) + nice);
  return out;
}

export interface BarChartOptions extends Frame {
  values: number[];
  /** Label under each bar (shown for every `labelEvery`-th bar). */
  labels: string[];
  labelEvery?: number;
  formatValue: (n: number) => string;
}

export function barChart(o: BarChartOptions): string {
  const plotW = o.width - PAD.left - PAD.right;
  const plotH = o.height - PAD.top - PAD.bottom;
  const axis = ticks(Math.max(...o.values, 0));
  const top = axis[axis.length - 1] ?? 1;
  const slot = plotW / Math.max(o.values.length, 1);
  const y = (v: number): number => PAD.top + plotH - (v / top) * plotH;
  const parts: string[] = [];
  for (const t of axis) {
    parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(PAD.left - 6, y(t) + 4, o.formatValue(t), "end"));
  }
  o.values.forEach((v, i) => {
    const x = PAD.left + i * slot;
    parts.push(
      `<rect x="${(x + 1).toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(slot - 2, 1).toFixed(1)}" height="${(PAD.top + plotH - y(v)).toFixed(1)}" fill="${BAR}"><title>${escapeXml(`${o.labels[i] ?? ""}: ${o.formatValue(v)}`)}</title></rect>`,
    );
    if (i % (o.labelEvery ?? 1) === 0) parts.push(text(x + slot / 2, o.height - PAD.bottom + 16, o.labels[i] ?? ""));
  });
  parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="${AXIS}"/>`);
  return svg(o, parts.join(""));
}

export interface LineChartOptions extends Frame {
  /** Values from 0 to 1 (probabilities), one per point, in order. */
  points: { label: string; value: number }[];
  formatValue: (n: number) => string;
  /** A horizontal reference line (e.g. the decision threshold). */
  reference?: number;
}

export function probabilityLineChart(o: LineChartOptions): string {
  const plotW = o.width - PAD.left - PAD.right;
  const plotH = o.height - PAD.top - PAD.bottom;
  const y = (v: number): number => PAD.top + plotH - v * plotH;
  const x = (i: number): number => PAD.left + (o.points.length === 1 ? plotW / 2 : (i / (o.points.length - 1)) * plotW);
  const parts: string[] = [];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(PAD.left - 6, y(t) + 4, o.formatValue(t), "end"));
  }
  if (o.reference !== undefined) {
    parts.push(
      `<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(o.reference).toFixed(1)}" y2="${y(o.reference).toFixed(1)}" stroke="${AXIS}" stroke-dasharray="4 3"/>`,
    );
  }
  const path = o.points.map((p, i) => `${i === 0 ? "M" : "L"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  if (o.points.length > 1) parts.push(`<path d="${path}" fill="none" stroke="${LINE}" stroke-width="2"/>`);
  const every = Math.max(1, Math.ceil(o.points.length / 8));
  o.points.forEach((p, i) => {
    parts.push(
      `<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" fill="${LINE}"><title>${escapeXml(`${p.label}: ${o.formatValue(p.value)}`)}</title></circle>`,
    );
    if (i % every === 0) parts.push(text(x(i), o.height - PAD.bottom + 16, p.label));
  });
  return svg(o, parts.join(""));
}
