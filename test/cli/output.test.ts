import { PassThrough } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { snakeKeys } from "../../src/cli/context.js";
import { describeBands, table } from "../../src/cli/format.js";
import { formatSummary } from "../../src/cli/score.js";
import { usageError } from "../../src/cli/main.js";
import { humanLines, logFormat } from "../../src/log.js";

describe("output for people and for machines", () => {
  it("writes human log lines on a terminal and JSON lines otherwise, unless CHURNOPS_LOG_FORMAT says", () => {
    expect(logFormat({}, true)).toBe("human");
    expect(logFormat({}, false)).toBe("json");
    expect(logFormat({ CHURNOPS_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(logFormat({ CHURNOPS_LOG_FORMAT: "human" }, false)).toBe("human");
    expect(() => logFormat({ CHURNOPS_LOG_FORMAT: "pretty" }, true)).toThrow("CHURNOPS_LOG_FORMAT pretty: expected human or json");
  });

  it("formats a log event as one short line with its fields, without the fields every line shares", () => {
    const sink = new PassThrough();
    let text = "";
    sink.on("data", (b: Buffer) => {
      text += b.toString();
    });
    const log = pino({ base: { app: "churnops" }, timestamp: () => ',"time":"2026-12-01T10:11:12.000Z"' }, humanLines(sink));
    log.warn({ event: "campaign.planned", campaign: "winback", treated: 20 }, "campaign planned");
    expect(text).toBe("[10:11:12] WARN: campaign planned (campaign=winback, treated=20)\n");
    log.info({ states: { dead: 2 } }, "sent");
    expect(text.split("\n")[1]).toBe('[10:11:12] INFO: sent (states={"dead":2})');
  });

  it("converts every camelCase key of a --json value to snake_case, and leaves data keys alone", () => {
    const value = { runId: "r1", rowsScored: 3, bands: { high: 1, "very high": 2, Low: 3 }, nested: [{ p95Ms: 1, customer_id: "c1" }], when: null };
    expect(snakeKeys(value)).toEqual({
      run_id: "r1",
      rows_scored: 3,
      bands: { high: 1, "very high": 2, Low: 3 },
      nested: [{ p95_ms: 1, customer_id: "c1" }],
      when: null,
    });
  });

  it("turns commander's usage errors into one line, with the suggestion when there is one", () => {
    expect(usageError("error: unknown command 'scroe'\n(Did you mean score?)\n")).toBe("unknown command 'scroe': did you mean score?");
    expect(usageError("error: unknown option '--colour'\n(Did you mean --color?)")).toBe("unknown option '--colour': did you mean --color?");
    expect(usageError("error: required option '--name <name>' not specified\n")).toBe("required option '--name <name>' not specified (see --help)");
  });

  it("shows bands with their cut-offs, and tables with a header", () => {
    const bands = [
      { name: "high", min: 0.6 },
      { name: "medium", min: 0.3 },
      { name: "low", min: 0 },
    ];
    expect(describeBands(bands)).toBe("high p ≥ 0.600 · medium p ≥ 0.300 · low p < 0.300");
    expect(table(["a", "bb"], [["xyz", "1"]])).toBe("a    bb\nxyz  1");
  });

  it("ends a score run's summary with every band, in the model's order, and their cut-offs beside the operating threshold", () => {
    const text = formatSummary({
      runId: "daily-2026-12-01-churn-v3",
      status: "complete",
      kind: "daily",
      asOf: "2026-12-01",
      modelName: "churn",
      modelVersion: "3",
      source: "customers.parquet",
      rowsRead: 10,
      rowsScored: 10,
      rowsQuarantined: 0,
      resumedFrom: 0,
      bands: { low: 6, high: 4 },
      bandCutoffs: [
        { name: "high", min: 0.45 },
        { name: "medium", min: 0.2 },
        { name: "low", min: 0 },
      ],
      operatingThreshold: 0.45,
      durationMs: 1000,
      rowsPerSecond: 10,
      out: null,
    });
    expect(text).toContain("  bands        high 4, medium 0, low 6\n");
    expect(text).toContain("  cut-offs     high p ≥ 0.450 · medium p ≥ 0.200 · low p < 0.200; flagged as churners at p ≥ 0.450");
  });
});
