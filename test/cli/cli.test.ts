import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { runCli } from "../helpers/cli.js";

const fixture = inject("fixture");
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  // A private copy of the fixture's data folder: these tests write a store and must not touch the shared one.
  home = join(mkdtempSync(join(tmpdir(), "churnops-cli-")), "home");
  cpSync(fixture.home, home, { recursive: true });
  env = { CHURNOPS_HOME: home, CHURNOPS_DB_URL: `sqlite://${join(home, "cli.db")}`, MLFLOW_TRACKING_URI: "" };
});

describe("the churnops command", () => {
  it("lists registered versions with the champion alias and headline metrics", async () => {
    const res = await runCli(["models", "--json"], env);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const versions = JSON.parse(res.stdout) as { version: string; aliases: string[]; metrics: { roc_auc: number } }[];
    const v = versions.find((x) => String(x.version) === fixture.version);
    expect(v?.aliases).toContain("champion");
    expect(v?.metrics.roc_auc).toBeGreaterThan(0.5);
  });

  it("scores with the champion resolved through the registry and shows the run in `runs`", async () => {
    const res = await runCli(["score", "--data", fixture.dataPath, "--as-of", "2026-11-10", "--json"], env);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { run_id: string; model_version: string; rows_scored: number };
    expect(summary.model_version).toBe(fixture.version);
    expect(summary.rows_scored).toBe(4000);
    const runs = JSON.parse((await runCli(["runs", "--json"], env)).stdout) as { run_id: string; status: string }[];
    expect(runs.map((r) => [r.run_id, r.status])).toContainEqual([summary.run_id, "complete"]);
    // For people: a header naming each column, then a line per run.
    const listed = (await runCli(["runs"], env)).stdout.split("\n");
    expect(listed[0]).toMatch(/^RUN\s+STATUS\s+MODEL\s+SCORED\s+QUARANTINED\s+STARTED\s+SOURCE$/);
    expect(listed.find((l) => l.startsWith(summary.run_id))).toMatch(new RegExp(`complete\\s+churn v${fixture.version}\\s+4000\\s+0\\s`));
  });

  it("writes the scores to a CSV file when asked, one line per scored customer", async () => {
    const out = join(home, "scores.csv");
    const res = await runCli(["score", "--data", fixture.dataPath, "--as-of", "2026-11-11", "--out", out, "--json"], env);
    expect(res.code).toBe(0);
    const { readFileSync } = await import("node:fs");
    const lines = readFileSync(out, "utf8").trim().split("\n");
    expect(lines[0]).toBe("run_id,customer_id,probability,band,decision,model_name,model_version,scored_at");
    expect(lines).toHaveLength(4001);
  });

  it("answers a bad date, kind or file with one line naming the flag and exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [["score", "--data", fixture.dataPath, "--as-of", "2026-02-30"], /--as-of 2026-02-30: expected a date as YYYY-MM-DD/],
      [["score", "--data", fixture.dataPath, "--kind", "weekly"], /--kind weekly: expected one of daily, monthly/],
      [["score", "--data", join(home, "nope.csv")], /no such file: .*nope\.csv/],
      [["score", "--data", fixture.dataPath, "--out", join(home, "x.json")], /--out .*x\.json: expected a file ending in \.parquet or \.csv/],
      [["score", "--data", fixture.dataPath, "--model", "7"], /version|7/],
    ];
    for (const [args, message] of cases) {
      const res = await runCli(args, env);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
    // None of these may have left a run behind.
    const runs = JSON.parse((await runCli(["runs", "--json"], env)).stdout) as { as_of: string }[];
    expect(runs.filter((r) => r.as_of !== "2026-11-10" && r.as_of !== "2026-11-11").map((r) => JSON.stringify(r))).toEqual([]);
  });

  it("rejects an unknown command or option with exit code 2", async () => {
    expect((await runCli(["frobnicate"], env)).code).toBe(2);
    expect((await runCli(["runs", "--colour"], env)).code).toBe(2);
  });

  it("lists every command in its help, and finds the command that follows --config", async () => {
    // Commands load their modules only when named; help and a typo must still see all of them.
    const help = await runCli(["--help"], env);
    expect(help.code).toBe(0);
    const listed = [...help.stdout.matchAll(/^ {2}([a-z-]+)\b/gm)].map((m) => m[1]);
    const every =
      "score serve runs quarantine models promote rollback report demo campaign outcomes monitor retrain daily daily-runs daily-summary train synth";
    expect(listed).toEqual(expect.arrayContaining(every.split(" ")));
    expect((await runCli(["scroe"], env)).stderr).toBe("churnops: unknown command 'scroe': did you mean score?\n");
    const config = join(home, "empty.toml");
    writeFileSync(config, "");
    const runs = await runCli(["--config", config, "runs", "--json"], env);
    expect(runs.code).toBe(0);
    expect(Array.isArray(JSON.parse(runs.stdout))).toBe(true);
  });

  it("shows quarantined rows with their reasons", async () => {
    const csv = join(home, "bad.csv");
    writeFileSync(
      csv,
      [
        "customer_id,tenure_months,monthly_charges,total_charges,num_support_tickets,num_logins_30d,contract_type,payment_method",
        "A1,12,50.5,600,1,10,month-to-month,credit_card",
        "A2,-4,50.5,600,1,10,month-to-month,credit_card",
      ].join("\n"),
    );
    const scored = await runCli(["score", "--data", csv, "--as-of", "2026-11-12", "--json"], env);
    expect(scored.stderr).toBe("");
    expect(scored.code).toBe(0);
    const res = await runCli(["quarantine", "latest", "--json"], env);
    const body = JSON.parse(res.stdout) as { total: number; rows: { customer_id: string; reason: string }[] };
    expect(body.total).toBe(1);
    expect(body.rows[0]).toMatchObject({ customer_id: "A2", reason: expect.stringContaining("tenure_months: -4 is below the minimum 0") });
  });

  it("prints the latest training report's path", async () => {
    const res = await runCli(["report", "--json"], env);
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as { report: string }).report).toMatch(/report\.html$/);
  });
});
