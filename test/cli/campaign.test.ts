import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { runCli } from "../helpers/cli.js";

const fixture = inject("fixture");
let home: string;
let env: NodeJS.ProcessEnv;
let config: string;
let scoreJson: string;

beforeAll(async () => {
  home = join(mkdtempSync(join(tmpdir(), "churnops-cli-campaign-")), "home");
  cpSync(fixture.home, home, { recursive: true });
  env = { CHURNOPS_HOME: home, CHURNOPS_DB_URL: `sqlite://${join(home, "campaign.db")}`, MLFLOW_TRACKING_URI: "" };
  config = join(home, "churnops.toml");
  // Few, fast attempts: a dead receiver turns every message into a dead letter within a second.
  writeFileSync(config, "[campaigns.delivery]\nmax_attempts = 2\nbackoff_ms = 1\nmax_backoff_ms = 2\nconcurrency = 8\ntimeout_ms = 2000\n");
  const scored = await runCli(["score", "--data", fixture.dataPath, "--as-of", "2026-11-10", "--json"], env);
  expect(scored.code, scored.stderr).toBe(0);
  scoreJson = scored.stdout;
});

/** Every key of a JSON value, at any depth, that is not snake_case. */
function camelKeys(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => camelKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(/^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/.test(k) ? [`${path}.${k}`] : []),
    ...camelKeys(v, `${path}.${k}`),
  ]);
}

/** A local port nobody listens on (bound, then released), so connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const noJsonLines = (text: string): void => expect(text.split("\n").filter((l) => l.trimStart().startsWith("{"))).toEqual([]);

describe("campaign commands", () => {
  it("refuses an unknown --min-band before anything is stored, listing the model's bands", async () => {
    const res = await runCli(["campaign", "plan", "--name", "typo", "--min-band", "hihg"], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/unknown risk band "hihg": model \S+ v\d+ has the bands high, medium, low/);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    const list = await runCli(["campaign", "list", "--json"], env);
    expect(JSON.parse(list.stdout)).toEqual([]);
    // The name was not used up: the corrected plan goes through under it.
    const fixed = await runCli(["campaign", "plan", "--name", "typo", "--min-band", "high"], env);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/bands {8}high p ≥ 0\.\d{3} · medium p ≥ 0\.\d{3} · low p < 0\.\d{3}/);
  });

  it("shows the model's band cut-offs in the plan's JSON, with snake_case keys", async () => {
    const res = await runCli(["campaign", "plan", "--name", "json-keys", "--threshold", "0.5", "--json"], env);
    expect(res.code, res.stderr).toBe(0);
    const plan = JSON.parse(res.stdout) as { bands: { name: string; min: number }[]; counts: Record<string, unknown> };
    expect(plan.bands.map((b) => b.name)).toEqual(["high", "medium", "low"]);
    expect(plan.counts).toHaveProperty("matching_rule");
    expect(plan.counts).toHaveProperty("by_band");
    expect(plan.counts).not.toHaveProperty("matchingRule");
  });

  it("says what failed and exits 1 when a send leaves dead letters, without a log line per message", async () => {
    expect((await runCli(["campaign", "plan", "--name", "unreachable", "--min-band", "high"], env)).code).toBe(0);
    const port = await closedPort();
    const res = await runCli(["--config", config, "campaign", "send", "unreachable", "--webhook", `http://127.0.0.1:${port}/crm`], env);
    expect(res.code).toBe(1);
    const problems = res.stderr.trim().split("\n");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^churnops: \d+ messages could not be delivered: ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+ — fix the receiver, then `churnops campaign retry-dead unreachable`$/,
    );
    expect(res.stdout).toMatch(/^Sent campaign, with dead letters: unreachable/);
    expect(res.stdout).toMatch(/not delivered {2}\d+: ECONNREFUSED/);
    noJsonLines(res.stderr);

    const json = await runCli(["--config", config, "campaign", "status", "unreachable", "--json"], env);
    const status = JSON.parse(json.stdout) as { dead: number; delivered: number; treated: number };
    expect(status).toMatchObject({ delivered: 0, dead: status.treated });
  });

  it("prints snake_case keys in every --json output, like the API and bundle.json", async () => {
    const outcomes = join(home, "outcomes.csv");
    writeFileSync(outcomes, "customer_id,churned,observed_at\nX1,yes,2026-11-20\n");
    expect((await runCli(["campaign", "plan", "--name", "keys", "--top-pct", "10"], env)).code).toBe(0);
    const commands = [
      ["runs", "--json"],
      ["quarantine", "latest", "--json"],
      ["models", "--json"],
      ["campaign", "list", "--json"],
      ["campaign", "status", "keys", "--json"],
      ["campaign", "send", "keys", "--json"],
      ["campaign", "report", "keys", "--json"],
      ["campaign", "opt-out", "X1", "--json"],
      ["outcomes", "ingest", outcomes, "--json"],
      ["monitor", "alerts", "--json"],
      ["daily-runs", "--json"],
    ];
    const found: Record<string, string[]> = { score: camelKeys(JSON.parse(scoreJson)) };
    for (const args of commands) {
      const res = await runCli(args, env);
      expect(res.code, `${args.join(" ")}: ${res.stderr}`).toBe(0);
      found[args.slice(0, 2).join(" ")] = camelKeys(JSON.parse(res.stdout));
    }
    expect(Object.fromEntries(Object.entries(found).filter(([, keys]) => keys.length > 0))).toEqual({});
  });

  it("reports opt-outs of ids the latest score run never saw, and records them anyway", async () => {
    const res = await runCli(["campaign", "opt-out", "nobody-1", "nobody-2", "--json"], env);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ opted_out: 2, added: 2, unknown: { count: 2, examples: ["nobody-1", "nobody-2"] } });
    const human = await runCli(["campaign", "opt-out", "nobody-3"], env);
    expect(human.stdout).toMatch(/1 of them were never scored by the latest run \S+ \(recorded anyway; check the ids\): nobody-3/);
  });

  it("prints one line and the suggestion for a typo'd command, not the whole help", async () => {
    const res = await runCli(["campaign", "sned", "x"], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe("churnops: unknown command 'sned': did you mean send?\n");
    expect(res.stdout).toBe("");
  });
});
