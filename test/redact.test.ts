import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { redactUrl } from "../src/redact.js";

const { cases } = JSON.parse(readFileSync(new URL("./fixtures/redaction-cases.json", import.meta.url), "utf8")) as { cases: [string, string][] };

describe("redactUrl", () => {
  it.each(cases)("shows %s as %s (the trainer's redact_url agrees on the same cases)", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});
