import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { clearResolveCache, resolveBundle } from "../../src/model/registry.js";

/**
 * A hostile MLflow server (a real HTTP server on loopback): versions that are paths, run ids that are paths,
 * an artifact that never ends, a bundle that does not match the digest it registered. Nothing it sends may
 * land outside the bundle cache, grow without bound, or enter the cache unverified.
 */
const fixture = inject("fixture");
let server: Server;
let root = "";
let streamedBytes = 0;
const CAP = 4 * 1024 * 1024;

const versions: Record<string, Record<string, unknown>> = {
  traversal: { name: "churn", version: "1/../../../../outside", run_id: "r1" },
  badrun: { name: "churn", version: "2", run_id: "../../outside" },
  huge: { name: "churn", version: "3", run_id: "hugerun" },
  forged: { name: "churn", version: "4", run_id: "goodrun", tags: [{ key: "bundle_digest", value: "0".repeat(64) }] },
  genuine: { name: "churn", version: "5", run_id: "goodrun" },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/api/2.0/mlflow/registered-models/alias") {
      const mv = versions[url.searchParams.get("alias") ?? ""];
      res.writeHead(mv === undefined ? 404 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify(mv === undefined ? {} : { model_version: mv }));
      return;
    }
    if (url.pathname === "/get-artifact" && url.searchParams.get("run_uuid") === "hugerun") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(256 * 1024, 7);
      const pump = (): void => {
        while (!res.destroyed && streamedBytes < 64 * CAP) {
          streamedBytes += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => undefined);
      pump();
      return;
    }
    if (url.pathname === "/get-artifact" && url.searchParams.get("run_uuid") === "goodrun") {
      const file = (url.searchParams.get("path") ?? "").replace(/^bundle\//, "");
      res.writeHead(200);
      res.end(readFileSync(join(fixture.bundleDir, file)));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  root = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
});

afterAll(() => {
  server.close();
});

function consumer() {
  const home = join(mkdtempSync(join(tmpdir(), "churnops-rest-")), "home");
  return { home, config: loadConfig({ env: { CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: root, CHURNOPS_PYTHON: "/nonexistent/python" }, cwd: home }) };
}

const cached = (home: string): string[] => (existsSync(join(home, "bundles", "churn")) ? readdirSync(join(home, "bundles", "churn")) : []);

describe("downloading a bundle from an untrusted MLflow server", () => {
  it("refuses a version that is a path, writing nothing outside the cache", async () => {
    clearResolveCache();
    const { home, config } = consumer();
    await expect(resolveBundle(config, "traversal")).rejects.toMatchObject({ code: "bundle_invalid", message: expect.stringMatching(/not a version number/) });
    expect(existsSync(join(home, "..", "outside"))).toBe(false);
    expect(existsSync(join(home, "bundles"))).toBe(false);
  });

  it("refuses a run id that is a path", async () => {
    clearResolveCache();
    const { config } = consumer();
    await expect(resolveBundle(config, "badrun")).rejects.toMatchObject({ code: "bundle_invalid", message: expect.stringMatching(/not a run id/) });
  });

  it("stops a streamed artifact at the size cap and leaves no partial bundle", async () => {
    clearResolveCache();
    const { home, config } = consumer();
    await expect(resolveBundle(config, "huge", { maxArtifactBytes: CAP })).rejects.toMatchObject({
      code: "bundle_invalid",
      message: expect.stringMatching(/more than the 4194304 bytes allowed/),
    });
    expect(streamedBytes).toBeLessThan(16 * CAP);
    expect(cached(home)).toEqual([]);
  });

  it("verifies against the registered digest before anything enters the cache", async () => {
    clearResolveCache();
    const { home, config } = consumer();
    await expect(resolveBundle(config, "forged")).rejects.toMatchObject({ code: "bundle_invalid", message: expect.stringMatching(/registry recorded/) });
    expect(cached(home)).toEqual([]);
    const genuine = await resolveBundle(config, "genuine");
    expect(cached(home)).toEqual(["v5"]);
    expect(genuine.bundlePath).toBe(join(home, "bundles", "churn", "v5"));
  });
});
