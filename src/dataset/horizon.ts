import { ChurnopsError } from "../errors.js";

/** A label horizon as a number of days: `30d`, `4w` or a bare number of days. */
export function parseHorizon(value: string, field = "horizon"): number {
  const m = /^\s*(\d+)\s*([dw]?)\s*$/i.exec(value);
  const days = m === null ? Number.NaN : Number(m[1]) * ((m[2] ?? "").toLowerCase() === "w" ? 7 : 1);
  if (!(Number.isInteger(days) && days >= 1 && days <= 3650))
    throw new ChurnopsError("bad_input", `--${field} ${JSON.stringify(value)}: expected a number of days such as 30d (or weeks, 4w), from 1 day to 10 years`, {
      field,
    });
  return days;
}

/** YYYY-MM-DD plus `days` (UTC calendar days). */
export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}
