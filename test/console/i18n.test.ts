import { describe, expect, it } from "vitest";
import { dictionaries, pickLocale, translator } from "../../src/console/i18n.js";

describe("console languages", () => {
  it("has every string in both English and Japanese", () => {
    const en = Object.keys(dictionaries.en).sort();
    expect(Object.keys(dictionaries.ja).sort()).toEqual(en);
    for (const [key, text] of Object.entries(dictionaries.ja)) expect(text.trim(), key).not.toBe("");
  });

  it("keeps the same placeholders in both languages", () => {
    const vars = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(dictionaries.en) as (keyof typeof dictionaries.en)[])
      expect(vars(dictionaries.ja[key]), key).toEqual(vars(dictionaries.en[key]));
  });

  it("picks the cookie's language, else the best supported Accept-Language, else English", () => {
    expect(pickLocale("ja", "en-US")).toBe("ja");
    expect(pickLocale(undefined, "fr-FR,ja;q=0.8,en;q=0.5")).toBe("ja");
    expect(pickLocale(undefined, "en;q=0.4, ja-JP;q=0.9")).toBe("ja");
    expect(pickLocale("xx", "de")).toBe("en");
    expect(pickLocale(undefined, undefined)).toBe("en");
  });

  it("formats numbers and dates for the locale", () => {
    expect(translator("en").num(1234567)).toBe("1,234,567");
    expect(translator("ja").date("2026-11-01")).toBe("2026年11月1日");
    expect(translator("en").date("2026-11-01")).toBe("Nov 1, 2026");
    expect(translator("ja").pct(0.125)).toBe("12.5%");
  });
});
