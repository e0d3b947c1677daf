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

/** Labels at the ends of a time axis lean inwards, so a long date is not cut off at the chart's edge. */
function edgeAnchor(i: number, count: number): "start" | "middle" | "end" {
  if (count < 2) return "middle";
  if (i === 0) return "start";
  return i === count - 1 ? "end" : "middle";
}

/** Colours for several series, distinguishable for common colour-vision deficiencies (Okabe–Ito). */
export const SERIES = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#7f6a00"];

export interface SeriesChartOptions extends Frame {
  /** x-axis labels, one per position, oldest first. */
  labels: string[];
  series: { name: string; values: (number | null)[] }[];
  formatValue: (n: number) => string;
  /** Horizontal reference lines (e.g. the PSI warn and alert levels). */
  references?: { value: number; label: string }[];
}

/** Several lines over the same positions (drift per feature over runs); a gap where a value is missing. */
export function seriesChart(o: SeriesChartOptions): string {
  const legendH = 18 * Math.ceil(o.series.length / 4);
  const plotW = o.width - PAD.left - PAD.right;
  const plotH = o.height - PAD.top - PAD.bottom - legendH;
  const all = o.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const axis = ticks(Math.max(...all, ...(o.references ?? []).map((r) => r.value), 0));
  const top = axis[axis.length - 1] ?? 1;
  const y = (v: number): number => PAD.top + plotH - (Math.min(v, top) / top) * plotH;
  const x = (i: number): number => PAD.left + (o.labels.length === 1 ? plotW / 2 : (i / (o.labels.length - 1)) * plotW);
  const parts: string[] = [];
  for (const t of axis) {
    parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(PAD.left - 6, y(t) + 4, o.formatValue(t), "end"));
  }
  for (const r of o.references ?? []) {
    parts.push(
      `<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(r.value).toFixed(1)}" y2="${y(r.value).toFixed(1)}" stroke="${AXIS}" stroke-dasharray="4 3"/>`,
    );
    parts.push(text(o.width - PAD.right - 2, y(r.value) - 3, r.label, "end"));
  }
  const every = Math.max(1, Math.ceil(o.labels.length / 8));
  o.labels.forEach((label, i) => {
    if (i % every === 0) parts.push(text(x(i), PAD.top + plotH + 16, label, edgeAnchor(i, o.labels.length)));
  });
  o.series.forEach((s, k) => {
    const colour = SERIES[k % SERIES.length] as string;
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
      parts.push(
        `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${colour}"><title>${escapeXml(`${s.name}, ${o.labels[i] ?? ""}: ${o.formatValue(v)}`)}</title></circle>`,
      );
    });
    if (d !== "") parts.push(`<path d="${d.trim()}" fill="none" stroke="${colour}" stroke-width="1.8"/>`);
    const lx = PAD.left + (k % 4) * (plotW / 4);
    const ly = o.height - legendH + 18 * Math.floor(k / 4) + 4;
    parts.push(`<rect x="${lx.toFixed(1)}" y="${ly.toFixed(1)}" width="12" height="4" fill="${colour}"/>`);
    parts.push(text(lx + 16, ly + 6, s.name, "start"));
  });
  parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="${AXIS}"/>`);
  return svg(o, parts.join(""));
}

export interface BandChartOptions extends Frame {
  /** Estimates over time, oldest first: the estimate and its sampling band (null when there is none). */
  estimates: { time: number; label: string; value: number | null; band: [number, number] | null }[];
  /** What the labels later said, at the time of the run they judge. */
  realised: { time: number; label: string; value: number }[];
  formatValue: (n: number) => string;
  formatTime: (t: number) => string;
  legend: { estimate: string; band: string; realised: string };
}

/**
 * Estimated performance as a line inside its shaded sampling band, with realised values as points on the same
 * time axis: where a point leaves the band, the estimate was wrong (concept drift, or a calibration gone stale).
 */
export function estimateBandChart(o: BandChartOptions): string {
  const legendH = 20;
  const plotW = o.width - PAD.left - PAD.right;
  const plotH = o.height - PAD.top - PAD.bottom - legendH;
  const times = [...o.estimates.map((e) => e.time), ...o.realised.map((r) => r.time)];
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const x = (t: number): number => (t1 === t0 ? PAD.left + plotW / 2 : PAD.left + ((t - t0) / (t1 - t0)) * plotW);
  const y = (v: number): number => PAD.top + plotH - Math.max(0, Math.min(1, v)) * plotH;
  const parts: string[] = [];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(PAD.left - 6, y(t) + 4, o.formatValue(t), "end"));
  }
  const banded = o.estimates.filter((e): e is typeof e & { band: [number, number] } => e.band !== null);
  if (banded.length > 0) {
    const upper = banded.map((e) => `${x(e.time).toFixed(1)},${y(e.band[1]).toFixed(1)}`);
    const lower = [...banded].reverse().map((e) => `${x(e.time).toFixed(1)},${y(e.band[0]).toFixed(1)}`);
    // One estimate still gets a visible band: a short bar instead of a zero-width polygon.
    if (banded.length === 1) {
      const e = banded[0] as (typeof banded)[number];
      parts.push(
        `<rect x="${(x(e.time) - 6).toFixed(1)}" y="${y(e.band[1]).toFixed(1)}" width="12" height="${Math.max(1, y(e.band[0]) - y(e.band[1])).toFixed(1)}" fill="${BAR}" fill-opacity="0.25"/>`,
      );
    } else parts.push(`<polygon points="${[...upper, ...lower].join(" ")}" fill="${BAR}" fill-opacity="0.25" stroke="none"/>`);
  }
  const line = o.estimates.filter((e): e is typeof e & { value: number } => e.value !== null);
  if (line.length > 1)
    parts.push(
      `<path d="${line.map((e, i) => `${i === 0 ? "M" : "L"}${x(e.time).toFixed(1)},${y(e.value).toFixed(1)}`).join(" ")}" fill="none" stroke="${BAR}" stroke-width="2"/>`,
    );
  for (const e of line) {
    const band = e.band === null ? "" : ` (${o.formatValue(e.band[0])}–${o.formatValue(e.band[1])})`;
    parts.push(
      `<circle cx="${x(e.time).toFixed(1)}" cy="${y(e.value).toFixed(1)}" r="2.5" fill="${BAR}"><title>${escapeXml(`${e.label}: ${o.formatValue(e.value)}${band}`)}</title></circle>`,
    );
  }
  for (const r of o.realised) {
    const cx = x(r.time);
    const cy = y(r.value);
    // A diamond, so realised points differ from the estimate by shape as well as colour.
    parts.push(
      `<path class="realised" d="M${cx.toFixed(1)},${(cy - 5).toFixed(1)} L${(cx + 5).toFixed(1)},${cy.toFixed(1)} L${cx.toFixed(1)},${(cy + 5).toFixed(1)} L${(cx - 5).toFixed(1)},${cy.toFixed(1)} Z" fill="${LINE}"><title>${escapeXml(`${r.label}: ${o.formatValue(r.value)}`)}</title></path>`,
    );
  }
  const ticksX = t1 === t0 ? [t0] : [0, 0.25, 0.5, 0.75, 1].map((f) => t0 + f * (t1 - t0));
  ticksX.forEach((t, k) => {
    parts.push(text(x(t), PAD.top + plotH + 16, o.formatTime(t), edgeAnchor(k, ticksX.length)));
  });
  parts.push(`<line x1="${PAD.left}" x2="${o.width - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="${AXIS}"/>`);
  const ly = o.height - legendH + 6;
  parts.push(`<rect x="${PAD.left}" y="${ly}" width="14" height="10" fill="${BAR}" fill-opacity="0.25"/>`);
  parts.push(text(PAD.left + 18, ly + 9, o.legend.band, "start"));
  parts.push(`<line x1="${PAD.left + plotW / 3}" x2="${PAD.left + plotW / 3 + 14}" y1="${ly + 5}" y2="${ly + 5}" stroke="${BAR}" stroke-width="2"/>`);
  parts.push(text(PAD.left + plotW / 3 + 18, ly + 9, o.legend.estimate, "start"));
  const rx = PAD.left + (2 * plotW) / 3;
  parts.push(`<path d="M${rx + 5},${ly} L${rx + 10},${ly + 5} L${rx + 5},${ly + 10} L${rx},${ly + 5} Z" fill="${LINE}"/>`);
  parts.push(text(rx + 14, ly + 9, o.legend.realised, "start"));
  return svg(o, parts.join(""));
}

export interface IntervalChartOptions extends Frame {
  /** Rows drawn as a point with its interval (e.g. each arm's churn rate, the difference). */
  rows: { label: string; value: number; ci: [number, number] | null }[];
  formatValue: (n: number) => string;
  /** A vertical reference line, e.g. 0 for "no difference". */
  reference?: number;
}

/** Points with horizontal 95% intervals on a shared scale (a forest plot). */
export function intervalChart(o: IntervalChartOptions): string {
  const left = 170;
  const plotW = o.width - left - PAD.right;
  const rowH = (o.height - PAD.top - PAD.bottom) / Math.max(o.rows.length, 1);
  const lows = o.rows.flatMap((r) => [r.value, r.ci?.[0] ?? r.value]);
  const highs = o.rows.flatMap((r) => [r.value, r.ci?.[1] ?? r.value]);
  let lo = Math.min(...lows, o.reference ?? Number.POSITIVE_INFINITY);
  let hi = Math.max(...highs, o.reference ?? Number.NEGATIVE_INFINITY);
  if (hi - lo < 1e-9) {
    lo -= 0.05;
    hi += 0.05;
  }
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const x = (v: number): number => left + ((v - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = lo + (k / 4) * (hi - lo);
    parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${PAD.top}" y2="${o.height - PAD.bottom}" stroke="#ddd"/>`);
    parts.push(text(x(v), o.height - PAD.bottom + 16, o.formatValue(v)));
  }
  if (o.reference !== undefined)
    parts.push(
      `<line x1="${x(o.reference).toFixed(1)}" x2="${x(o.reference).toFixed(1)}" y1="${PAD.top}" y2="${o.height - PAD.bottom}" stroke="${AXIS}" stroke-dasharray="4 3"/>`,
    );
  o.rows.forEach((r, i) => {
    const cy = PAD.top + rowH * (i + 0.5);
    parts.push(text(left - 8, cy + 4, r.label, "end"));
    const ci = r.ci === null ? "" : ` (95% CI ${o.formatValue(r.ci[0])} – ${o.formatValue(r.ci[1])})`;
    if (r.ci !== null) {
      parts.push(
        `<line class="ci" x1="${x(r.ci[0]).toFixed(1)}" x2="${x(r.ci[1]).toFixed(1)}" y1="${cy.toFixed(1)}" y2="${cy.toFixed(1)}" stroke="${LINE}" stroke-width="2"/>`,
      );
      for (const end of r.ci)
        parts.push(
          `<line x1="${x(end).toFixed(1)}" x2="${x(end).toFixed(1)}" y1="${(cy - 5).toFixed(1)}" y2="${(cy + 5).toFixed(1)}" stroke="${LINE}" stroke-width="2"/>`,
        );
    }
    parts.push(
      `<circle cx="${x(r.value).toFixed(1)}" cy="${cy.toFixed(1)}" r="4.5" fill="${LINE}"><title>${escapeXml(`${r.label}: ${o.formatValue(r.value)}${ci}`)}</title></circle>`,
    );
  });
  return svg(o, parts.join(""));
}

export interface WaterfallOptions extends Frame {
  /** Where every customer starts: the model's log-odds for the training reference (docs/bundle.md). */
  baseline: { label: string; logOdds: number };
  /** What moves this customer away from it, in order: each a step on the log-odds scale. */
  steps: { label: string; delta: number }[];
  /** Where the steps end: this customer's log-odds (baseline + Σ steps, to rounding). */
  total: { label: string; logOdds: number };
  /** Formats the baseline's and the customer's probabilities. */
  formatProbability: (p: number) => string;
  /** Axis ticks are drawn at round probabilities (1%, 5%, 50%…); this formats them. */
  formatTick: (p: number) => string;
  formatDelta: (d: number) => string;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const logit = (p: number): number => Math.log(p / (1 - p));
const RAISES = "#b5452f";
const LOWERS = "#2f6db5";

/**
 * A customer's contributions as a horizontal waterfall on the log-odds scale, where they add up exactly
 * (baseline + Σ contributions = logit of the probability); the axis is labelled in probabilities, which is what
 * people read. Bars that raise risk and bars that lower it differ in colour and in the sign of their label.
 */
export function waterfallChart(o: WaterfallOptions): string {
  const left = 200;
  const right = 64;
  const plotW = o.width - left - right;
  const rows = o.steps.length + 2;
  const rowH = (o.height - PAD.top - PAD.bottom) / rows;
  const points = [o.baseline.logOdds, o.total.logOdds];
  let cum = o.baseline.logOdds;
  for (const s of o.steps) {
    cum += s.delta;
    points.push(cum);
  }
  let lo = Math.min(...points);
  let hi = Math.max(...points);
  const pad = Math.max((hi - lo) * 0.08, 0.2);
  lo -= pad;
  hi += pad;
  const x = (z: number): number => left + ((z - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  const tickPs = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99].filter((p) => logit(p) >= lo && logit(p) <= hi);
  const shown = tickPs.length > 7 ? tickPs.filter((_, k) => k % 2 === 0) : tickPs;
  for (const p of shown) {
    const tx = x(logit(p));
    parts.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${PAD.top}" y2="${o.height - PAD.bottom}" stroke="#ddd"/>`);
    parts.push(text(tx, o.height - PAD.bottom + 16, o.formatTick(p)));
  }
  const cy = (i: number): number => PAD.top + rowH * (i + 0.5);
  const barH = Math.min(rowH * 0.6, 18);
  const marker = (i: number, label: string, z: number): void => {
    parts.push(text(left - 8, cy(i) + 4, label, "end"));
    parts.push(
      `<rect x="${(x(z) - 3).toFixed(1)}" y="${(cy(i) - barH / 2).toFixed(1)}" width="6" height="${barH.toFixed(1)}" fill="${AXIS}"><title>${escapeXml(`${label}: ${o.formatProbability(sigmoid(z))}`)}</title></rect>`,
    );
    parts.push(text(x(z) + 8, cy(i) + 4, o.formatProbability(sigmoid(z)), "start"));
  };
  marker(0, o.baseline.label, o.baseline.logOdds);
  cum = o.baseline.logOdds;
  o.steps.forEach((s, k) => {
    const i = k + 1;
    const from = cum;
    cum += s.delta;
    const x0 = x(Math.min(from, cum));
    const w = Math.max(Math.abs(x(cum) - x(from)), 1);
    parts.push(text(left - 8, cy(i) + 4, s.label, "end"));
    parts.push(
      `<rect class="${s.delta >= 0 ? "raises" : "lowers"}" x="${x0.toFixed(1)}" y="${(cy(i) - barH / 2).toFixed(1)}" width="${w.toFixed(1)}" height="${barH.toFixed(1)}" fill="${s.delta >= 0 ? RAISES : LOWERS}"><title>${escapeXml(`${s.label}: ${o.formatDelta(s.delta)}`)}</title></rect>`,
    );
    parts.push(text(x(Math.max(from, cum)) + 6, cy(i) + 4, o.formatDelta(s.delta), "start"));
    // A thin connector from this step's end to the next row, as waterfalls draw them.
    parts.push(
      `<line x1="${x(cum).toFixed(1)}" x2="${x(cum).toFixed(1)}" y1="${(cy(i) + barH / 2).toFixed(1)}" y2="${(cy(i + 1) - barH / 2).toFixed(1)}" stroke="${AXIS}" stroke-dasharray="2 2"/>`,
    );
  });
  marker(rows - 1, o.total.label, o.total.logOdds);
  parts.push(`<line x1="${left}" x2="${o.width - right}" y1="${o.height - PAD.bottom}" y2="${o.height - PAD.bottom}" stroke="${AXIS}"/>`);
  return svg(o, parts.join(""));
}
