import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exportMessages, fileTarget, writeTargetFile } from "../../src/campaigns/export.js";
import { idempotencyKey, planCampaign } from "../../src/campaigns/plan.js";
import { chooseAdapter, type SendRequest, sendCampaign } from "../../src/campaigns/send.js";
import { backoffDelay, sendWebhook } from "../../src/campaigns/webhook.js";
import { loadConfig } from "../../src/config.js";
import { campaignMembers } from "../../src/store/campaigns.js";
import { openStore, type Store } from "../../src/store/db.js";
import { assignToFile, messageStateCounts, retryDead } from "../../src/store/outbox.js";
import { runCli, startCli } from "../helpers/cli.js";
import { storeTargets } from "../helpers/stores.js";
import { type Receiver, startReceiver } from "./receiver.js";
import { BANDS, seedRun } from "./seed.js";

const delivery = (overrides: Partial<SendRequest["delivery"]> = {}): SendRequest["delivery"] => ({
  ...loadConfig({ env: {}, cwd: tmpdir() }).campaigns.delivery,
  backoff_ms: 1,
  max_backoff_ms: 5,
  ...overrides,
});

/** A pid that certainly belonged to a process on this host that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("retry timing", () => {
  it("backs off exponentially up to the cap, with jitter in the upper half", () => {
    expect(backoffDelay(1, 100, 10_000, () => 0)).toBe(50);
    expect(backoffDelay(1, 100, 10_000, () => 1)).toBe(100);
    expect(backoffDelay(4, 100, 10_000, () => 0.5)).toBe(600);
    expect(backoffDelay(20, 100, 10_000, () => 1)).toBe(10_000);
  });
});

describe.each(storeTargets)("campaign delivery on $name", (target) => {
  let store: Store | undefined;
  let receiver: Receiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    await store?.close();
    receiver = undefined;
    store = undefined;
  });

  async function planned(name: string, n = 1500): Promise<{ url: string; treated: Set<string>; control: Set<string> }> {
    const url = await target.fresh();
    store = await openStore(url);
    await seedRun(store, { n, asOf: "2026-11-01" });
    await planCampaign(store, {
      name,
      run: "latest",
      rule: { kind: "band", band: "high" },
      budget: null,
      controlShare: 0.1,
      cooldownDays: 30,
      modelBands: async () => BANDS,
    });
    const members = await campaignMembers(store, name);
    const keys = (arm: string) => new Set(members.filter((m) => m.arm === arm).map((m) => idempotencyKey(name, m.customer_id)));
    return { url, treated: keys("treatment"), control: keys("control") };
  }

  it("delivers every treated member exactly once although the sender is SIGKILLed again and again", async () => {
    const { url, treated, control } = await planned("kill");
    expect(treated.size).toBeGreaterThan(300);
    const home = mkdtempSync(join(tmpdir(), "churnops-kill-"));
    const config = join(home, "churnops.toml");
    // A long lease: only the dead-owner check (not lease expiry) can hand a killed sender's messages back.
    writeFileSync(
      config,
      "[campaigns.delivery]\nmax_attempts = 50\nbackoff_ms = 2\nmax_backoff_ms = 20\nconcurrency = 4\ntimeout_ms = 5000\nlease_seconds = 3600\n",
    );
    let onAccept: (() => void) | null = null;
    receiver = await startReceiver({
      delayMs: () => 1 + Math.random() * 8,
      behaviour: () => (Math.random() < 0.05 ? "fail" : "accept"),
      afterAccept: () => onAccept?.(),
    });
    const env = { CHURNOPS_DB_URL: url, CHURNOPS_HOME: home, CHURNOPS_WEBHOOK_TOKEN: "s3cret" };
    const args = ["--config", config, "campaign", "send", "kill", "--webhook", receiver.url];
    let kills = 0;
    let killsAfterAccept = 0;
    for (let round = 0; round < 6; round++) {
      const r = receiver;
      const killAt = r.requests.length + 5 + Math.floor(Math.random() * 60);
      const { child, done } = startCli(args, env);
      let poll: NodeJS.Timeout | undefined;
      if (round % 2 === 0) {
        // Die in the worst place: the receiver has accepted, the sender has not yet recorded it.
        onAccept = () => {
          if (r.requests.length >= killAt && child.kill("SIGKILL")) {
            killsAfterAccept++;
            onAccept = null;
          }
        };
      } else {
        poll = setInterval(() => {
          if (r.requests.length >= killAt) {
            clearInterval(poll);
            setTimeout(() => child.kill("SIGKILL"), Math.random() * 15);
          }
        }, 2);
      }
      const result = await done;
      clearInterval(poll);
      onAccept = null;
      if (result.signal === "SIGKILL") kills++;
      else expect(result.code, result.stderr).toBe(0);
    }
    expect(kills).toBeGreaterThanOrEqual(4);
    const final = await runCli(args, env);
    expect(final.code, final.stderr).toBe(0);

    expect(new Set(receiver.accepted.keys())).toEqual(treated);
    expect(receiver.requests.some((k) => control.has(k))).toBe(false);
    expect(receiver.requests.every((k) => treated.has(k))).toBe(true);
    // Each kill after an acceptance left one message accepted but unrecorded: it was resent, and deduplicated.
    expect(receiver.duplicates).toBeGreaterThanOrEqual(killsAfterAccept);
    expect(receiver.authorization).toEqual(new Set(["Bearer s3cret"]));

    const status = await runCli(["campaign", "status", "kill", "--json"], env);
    expect(status.code, status.stderr).toBe(0);
    const json = JSON.parse(status.stdout) as Record<string, number>;
    expect(json).toMatchObject({ treated: treated.size, control: control.size, delivered: treated.size, pending: 0, sending: 0, dead: 0 });
  });

  it("retries failures, dead-letters a message after its attempts with the last error, and can queue dead letters again", async () => {
    const { treated } = await planned("dead", 300);
    const [flaky, broken, rejected, slow] = [...treated].sort() as [string, string, string, string];
    const seen = new Map<string, number>();
    receiver = await startReceiver({
      behaviour: (key) => {
        const n = (seen.get(key) ?? 0) + 1;
        seen.set(key, n);
        if (key === flaky) return n < 3 ? "fail" : "accept";
        if (key === broken) return "fail";
        if (key === rejected) return "reject";
        if (key === slow) return "hang";
        return "accept";
      },
    });
    const summary = await sendCampaign(store as Store, {
      campaign: "dead",
      adapter: { kind: "webhook", url: receiver.url },
      delivery: delivery({ max_attempts: 4, timeout_ms: 300 }),
      env: { CHURNOPS_WEBHOOK_TOKEN: "t0k", CHURNOPS_UNUSED: "x" },
    });
    expect(summary.states).toEqual({ pending: 0, sending: 0, delivered: treated.size - 3, dead: 3 });
    expect(seen.get(flaky)).toBe(3);
    expect(seen.get(broken)).toBe(4);
    expect(seen.get(rejected)).toBe(1);
    const dead = await (store as Store).db.selectFrom("campaign_messages").selectAll().where("state", "=", "dead").orderBy("idempotency_key").execute();
    const byKey = new Map(dead.map((d) => [d.idempotency_key, d]));
    expect(byKey.get(broken as string)).toMatchObject({ last_error: "HTTP 503: busy" });
    expect(Number(byKey.get(broken as string)?.attempts)).toBe(4);
    expect(byKey.get(rejected as string)?.last_error).toBe("HTTP 422: unknown customer");
    expect(byKey.get(slow as string)?.last_error).toBe("no answer within 300 ms");
    expect(receiver.authorization).toEqual(new Set(["Bearer t0k"]));

    expect(await retryDead(store as Store, "dead")).toBe(3);
    expect((await messageStateCounts(store as Store, "dead")).pending).toBe(3);
  });

  it("exports to a file once per member, and a crash between writing and recording never duplicates a line", async () => {
    const { treated, control } = await planned("file", 800);
    const dir = mkdtempSync(join(tmpdir(), "churnops-export-"));
    const path = join(dir, "crm.jsonl");
    // A crashed export: messages assigned and the file renamed into place, but never marked delivered.
    const gone = `${hostname()}/${deadPid()}/deadbeef`;
    await assignToFile(store as Store, "file", fileTarget(path), gone, new Date(Date.now() + 3_600_000));
    expect(await writeTargetFile(store as Store, "file", fileTarget(path))).toBe(treated.size);
    expect((await messageStateCounts(store as Store, "file")).sending).toBe(treated.size);

    const first = await sendCampaign(store as Store, { campaign: "file", adapter: { kind: "export", path }, delivery: delivery() });
    const again = await exportMessages(store as Store, "file", path, "me", new Date(Date.now() + 60_000));
    expect(first.delivered).toBe(treated.size);
    expect(again).toMatchObject({ delivered: 0, lines: treated.size });
    const lines = readFileSync(path, "utf8").trim().split("\n");
    const keys = lines.map((l) => (JSON.parse(l) as { idempotency_key: string }).idempotency_key);
    expect(keys).toHaveLength(treated.size);
    expect(new Set(keys)).toEqual(treated);
    expect(keys.some((k) => control.has(k))).toBe(false);
    expect(readdirSync(dir)).toEqual(["crm.jsonl"]);
  });

  it("finishes a file export a dead sender left half-done before sending anything else to the webhook", async () => {
    const { treated } = await planned("mixed", 600);
    const dir = mkdtempSync(join(tmpdir(), "churnops-export-"));
    const csv = join(dir, "crm.csv");
    const gone = `${hostname()}/${deadPid()}/cafe`;
    await assignToFile(store as Store, "mixed", fileTarget(csv), gone, new Date(Date.now() + 3_600_000));
    receiver = await startReceiver();
    const summary = await sendCampaign(store as Store, { campaign: "mixed", adapter: { kind: "webhook", url: receiver.url }, delivery: delivery() });
    expect(summary.recoveredExports).toEqual([{ target: fileTarget(csv), delivered: treated.size, lines: treated.size }]);
    expect(receiver.requests).toHaveLength(0);
    expect(summary.states.delivered).toBe(treated.size);
    expect(existsSync(csv)).toBe(true);
    const [header, ...rows] = readFileSync(csv, "utf8").trim().split("\n");
    expect(header?.startsWith("idempotency_key,campaign,customer_id")).toBe(true);
    expect(new Set(rows.map((r) => r.split(",")[0]))).toEqual(treated);
  });

  it("reads at most a capped part of a receiver's answer: an endless 200 body is dropped, an error body is cut and stored without the token", async () => {
    const { treated } = await planned("endless", 200);
    const refused = new Set([...treated].sort().slice(0, 5));
    const sent = { bytes: 0, endless: 0 };
    const chunk = Buffer.alloc(64 * 1024, "x");
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (refused.has(String(req.headers["idempotency-key"]))) {
          // A permanent rejection that echoes the credential, followed by megabytes.
          res.writeHead(422, { "content-type": "text/plain" });
          res.end(`bad token Bearer s3cret-t0ken-value (also s3cret-t0ken-value) at https://h/x?token=abc ${"y".repeat(4 * 1024 * 1024)}`);
          return;
        }
        sent.endless++;
        res.writeHead(200, { "content-type": "text/plain" });
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk)) sent.bytes += chunk.length;
          if (!res.destroyed) res.once("drain", pump);
        };
        res.on("close", () => res.removeAllListeners("drain"));
        pump();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
      const summary = await sendCampaign(store as Store, {
        campaign: "endless",
        adapter: { kind: "webhook", url },
        delivery: delivery({ max_attempts: 3, timeout_ms: 20_000, concurrency: 4 }),
        env: { CHURNOPS_WEBHOOK_TOKEN: "s3cret-t0ken-value" },
      });
      expect(summary.states).toMatchObject({ delivered: treated.size - refused.size, dead: refused.size });
      // Only what socket buffers took before the sender hung up: no 200 body was read to its (missing) end.
      expect(sent.bytes / sent.endless).toBeLessThan(16 * 1024 * 1024);
      const errors = await (store as Store).db.selectFrom("campaign_messages").select("last_error").where("state", "=", "dead").execute();
      expect(errors).toHaveLength(refused.size);
      for (const e of errors) {
        expect(e.last_error).not.toContain("s3cret");
        expect(e.last_error).not.toContain("abc");
        expect(String(e.last_error).length).toBeLessThanOrEqual(320);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("a webhook URL with user info", () => {
  it("is refused at send time with a message that does not print the password", async () => {
    const url = "https://crm:p@ss-w0rd@hooks.example/in";
    const config = loadConfig({ env: {}, cwd: tmpdir() }).campaigns.delivery;
    expect(() => chooseAdapter("c", { webhook: url }, config, tmpdir(), {})).toThrow(/user info/);
    expect(() => chooseAdapter("c", { adapter: "webhook" }, config, tmpdir(), { CHURNOPS_WEBHOOK_URL: url })).toThrow(/user info/);
    try {
      chooseAdapter("c", { webhook: url }, config, tmpdir(), {});
    } catch (err) {
      expect((err as Error).message).not.toContain("w0rd");
      expect(err).toMatchObject({ code: "bad_input", field: "webhook" });
    }
    const store = await openStore("sqlite::memory:");
    try {
      const options = { url, headers: {}, timeoutMs: 100, maxAttempts: 1, backoffMs: 1, maxBackoffMs: 1, concurrency: 1, leaseSeconds: 5, owner: "t" };
      await expect(sendWebhook(store, "c", options)).rejects.toMatchObject({ code: "bad_input", message: expect.stringContaining("crm:***@hooks.example") });
    } finally {
      await store.close();
    }
  });
});
