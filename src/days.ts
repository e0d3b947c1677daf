/** `date` (YYYY-MM-DD) moved by a whole number of days, as YYYY-MM-DD (UTC, so no daylight-saving shifts). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}
