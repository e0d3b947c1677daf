import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openStore } from "../../src/store/db.js";
import { type CliResult, startCli } from "../helpers/cli.js";
import { ADMIN_KEY, API_KEY, copyBundle, customer, setBundleVersion } from "./helpers.js";

function home(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), "churnops-serve-"));
  // A flush interval longer than the test: every row in the store below was written by the shutdown flush.
  writeFileSync(join(dir, "churnops.toml"), "[server.prediction_log]\nflush_ms = 600000\nflush_rows = 100000\n");
  return {
    dir,
    env: {
      CHURNOPS_HOME: dir,
      CHURNOPS_CONFIG: join(dir, "churnops.toml"),
      CHURNOPS_API_KEYS: API_KEY,
      CHURNOPS_ADMIN_KEY: ADMIN_KEY,
      CHURNOPS_LOG_LEVEL: "info",
    },
  };
}

async function listening(stdout: () => string): Promise<string> {
  let url = "";
  await expect
    .poll(
      () => {
        url = /listening on (http:\/\/[^\s]+)/.exec(stdout())?.[1] ?? "";
        return url;
      },
      { timeout: 60_000, interval: 100 },
    )
    .not.toBe("");
  return url;
}

/** Run a command that must fail at start; a server that starts anyway is stopped rather than left to hang the test. */
async function refused(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const { child, done } = startCli(args, env);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

describe("churnops serve", () => {
  it("serves, reloads on SIGHUP, and on SIGTERM drains and writes every prediction before exiting 0", async () => {
    const h = home();
    const bundle = copyBundle("1");
    const { child, done } = startCli(["serve", "--port", "0", "--model", bundle], h.env);
    let out = "";
    child.stdout?.on("data", (d: string) => {
      out += d;
    });
    const url = await listening(() => out);
    const headers = { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" };
    const post = (id: string) => fetch(`${url}/v1/predict`, { method: "POST", headers, body: JSON.stringify(customer(id)) });
    for (let i = 0; i < 5; i++) expect((await post(`s${i}`)).status).toBe(200);

    setBundleVersion(bundle, "2");
    child.kill("SIGHUP");
    await expect
      .poll(async () => ((await (await post("after-hup")).json()) as { model: { version: string } }).model.version, { timeout: 30_000, interval: 200 })
      .toBe("2");

    const inFlight = Promise.allSettled(Array.from({ length: 20 }, (_, i) => post(`t${i}`)));
    await new Promise((r) => setTimeout(r, 5));
    child.kill("SIGTERM");
    // Requests sent after the listener closed are refused; every one that was answered must be in the store.
    const statuses = (await inFlight).map((r) => (r.status === "fulfilled" ? r.value.status : 0));
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('"event":"model.reloaded"');
    expect(result.stderr).toContain('"event":"server.stopped"');
    expect(result.stderr).toMatch(/"request_id":"[^"]+"/);

    const store = await openStore(`sqlite://${join(h.dir, "churnops.db")}`);
    try {
      const rows = await store.db.selectFrom("predictions").select(["customer_id", "model_version"]).execute();
      const answered = 5 + statuses.filter((s) => s === 200).length;
      // Every answered request was logged (the SIGHUP poll adds at least one more).
      expect(rows.length).toBeGreaterThanOrEqual(answered + 1);
      expect(rows.filter((r) => r.customer_id.startsWith("s")).every((r) => r.model_version === "1")).toBe(true);
      expect(rows.filter((r) => r.customer_id.startsWith("t")).every((r) => r.model_version === "2")).toBe(true);
      expect(rows.filter((r) => r.customer_id.startsWith("t")).length).toBe(statuses.filter((s) => s === 200).length);
    } finally {
      await store.close();
    }
  });

  it("refuses to start without API keys, naming the variable", async () => {
    const h = home();
    const r = await refused(["serve", "--port", "0", "--model", copyBundle()], { ...h.env, CHURNOPS_API_KEYS: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("CHURNOPS_API_KEYS");
  });

  it("refuses --shadow without a challenger and a corrupt bundle at start", async () => {
    const h = home();
    const shadow = await refused(["serve", "--port", "0", "--model", copyBundle(), "--shadow"], h.env);
    expect(shadow.code).toBe(2);
    expect(shadow.stderr).toContain("--challenger");
    const dir = copyBundle();
    writeFileSync(join(dir, "model.onnx"), "not a model");
    const corrupt = await refused(["serve", "--port", "0", "--model", dir], h.env);
    expect(corrupt.code).toBe(2);
    expect(corrupt.stderr).toMatch(/sha256/);
  });
});
