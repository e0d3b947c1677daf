/**
 * Console page latency and the risk-list CSV export with 1,000,000 scored customers in the store. Prints JSON.
 *   - p50 / p95 round-trip time of each page (over one keep-alive connection on 127.0.0.1, so at least the server
 *     time), after a warm-up, for the pages issue 18 names: overview, risk list (filters, sorts, a deep keyset
 *     page), customer, runs, campaigns, monitoring, audit, and models when a registry is there;
 *   - the CSV export of all 1,000,000 rows: rows/s and the process's resident memory before and at its peak.
 * The console plugin runs in this process on Fastify (the same plugin `churnops serve` mounts under /console/).
 * Usage: npx tsx benchmarks/console_pages.ts [--rows 1000000] [--requests 30] [--store sqlite|postgres] [--keep]
 *   --keep  leave the seeded store in place and print its URL (to look at a query's plan afterwards)
 * Env: CHURNOPS_HOME=<home with a model registry> to include the models page and the feature filters (each score
 * then keeps its champion's categorical inputs); CHURNOPS_BENCH_PG=<url>.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { sql } from "kysely";
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { consolePlugin } from "../src/console/plugin.js";
import { registeredBundleJson } from "../src/model/registry.js";
import { openStore, type Store } from "../src/store/db.js";
import { storedCategoricalFeatures } from "../src/store/score-features.js";
import { addUser } from "../src/store/users.js";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROWS = Number(flag("--rows") ?? "1000000");
const REQUESTS = Number(flag("--requests") ?? "30");
const DIALECT = flag("--store") ?? "sqlite";
const KEEP = args.includes("--keep");
const PG_URL = process.env.CHURNOPS_BENCH_PG ?? "postgresql://root@127.0.0.1:5432/test";
const PASSWORD = "benchmark password";

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A deterministic stream of probabilities (xorshift), skewed low like real churn scores. */
function probabilities(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296) ** 1.6;
  }
  return out;
}

const band = (p: number): string => (p >= 0.6 ? "high" : p >= 0.3 ? "medium" : "low");

/**
 * One complete score run of `n` customers, written in bulk (the benchmark measures reading, not writing). With
 * `width` categorical features (the registered model's, when CHURNOPS_HOME has one) each score also keeps its
 * categorical inputs, drawn uniformly from `sizes[i]` categories each, so the feature filters have rows to find.
 */
async function seedRun(store: Store, asOf: string, n: number, seed: number, sizes: readonly number[] = []): Promise<string> {
  const runId = `monthly-${asOf}-churn-v1`;
  const at = `${asOf}T06:00:00.000Z`;
  await store.db
    .insertInto("score_runs")
    .values({
      run_id: runId,
      kind: "monthly",
      as_of: asOf,
      model_name: "churn",
      model_version: "1",
      source: "benchmark",
      status: "complete",
      started_at: at,
      finished_at: at,
      rows_read: n,
      rows_scored: n,
      rows_quarantined: 0,
      checkpoint_rows: n,
      duration_ms: 1,
      error: null,
      lease_owner: null,
      lease_expires_at: null,
    })
    .execute();
  const p = probabilities(n, seed);
  const id = (i: number): string => `C${String(i + 1).padStart(7, "0")}`;
  const features = (i: number): Buffer | null => (sizes.length === 0 ? null : Buffer.from(sizes.map((size, k) => ((i * 2654435761 + k * 40503) >>> 7) % size)));
  if (store.sqlite !== null) {
    const insert = store.sqlite.prepare(
      "INSERT INTO scores (run_id, customer_id, probability, band, decision, model_name, model_version, scored_at, features) VALUES (?, ?, ?, ?, ?, 'churn', '1', ?, ?)",
    );
    store.sqlite.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(runId, id(i), p[i], band(p[i] as number), (p[i] as number) >= 0.25 ? 1 : 0, at, features(i));
    })();
  } else {
    for (let start = 0; start < n; start += 50_000) {
      const ids: string[] = [];
      const ps: number[] = [];
      const bands: string[] = [];
      const decisions: number[] = [];
      const blobs: (Buffer | null)[] = [];
      for (let i = start; i < Math.min(n, start + 50_000); i++) {
        blobs.push(features(i));
        ids.push(id(i));
        ps.push(p[i] as number);
        bands.push(band(p[i] as number));
        decisions.push((p[i] as number) >= 0.25 ? 1 : 0);
      }
      await sql`INSERT INTO scores (run_id, customer_id, probability, band, decision, model_name, model_version, scored_at, features)
        SELECT ${runId}, u.c, u.p, u.b, u.d, 'churn', '1', ${at}, u.f
        FROM unnest(${ids}::text[], ${ps}::float8[], ${bands}::text[], ${decisions}::integer[], ${blobs}::bytea[]) AS u(c, p, b, d, f)`.execute(store.db);
    }
    // What autovacuum does to a table after a bulk load, done now so the reads are timed as they run a minute
    // later: statistics for the planner and the visibility map for index-only scans. (`scores` is a view over
    // score_rows since migration 020; analysing the view did nothing, and the plans were chosen without
    // statistics: 1.3 s pages and a 22k rows/s export.)
    await sql`VACUUM (ANALYZE) score_rows`.execute(store.db);
  }
  return runId;
}

async function freshStoreUrl(): Promise<{ url: string; cleanup: () => Promise<void> }> {
  if (DIALECT === "postgres") {
    const schema = `bench_console_${process.pid}`;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.end();
    return {
      url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      cleanup: async () => {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`);
        await c.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), "churnops-bench-console-"));
  return { url: `sqlite://${join(dir, "store.db")}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

async function main(): Promise<void> {
  const { url, cleanup } = await freshStoreUrl();
  const store = await openStore(url);
  const home = process.env.CHURNOPS_HOME ?? mkdtempSync(join(tmpdir(), "churnops-bench-home-"));
  const settings = loadConfig({ env: { ...process.env, CHURNOPS_HOME: home }, cwd: home });
  // With a registry (CHURNOPS_HOME), its champion's categorical features are stored with each score and filtered by.
  const bundle = process.env.CHURNOPS_HOME === undefined ? null : await registeredBundleJson(settings)({ model_name: "churn", model_version: "1" });
  const categorical = bundle === null ? [] : storedCategoricalFeatures(bundle);
  const sizes = categorical.map((f) => Math.min(f.categories.length, 254));
  const t0 = performance.now();
  await seedRun(store, "2026-10-31", ROWS, 7, sizes);
  const latest = await seedRun(store, "2026-11-30", ROWS, 11, sizes);
  log(`seeded 2 runs × ${ROWS} scores in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await addUser(store, "bench", "viewer", PASSWORD);

  const app = Fastify({ logger: false });
  await app.register(consolePlugin, { prefix: "/console", store, config: settings.console, settings });
  const base = `${await app.listen({ host: "127.0.0.1", port: 0 })}/console`;
  try {
    // Sign in as a browser would: the form's CSRF token, then the session cookie.
    const login = await fetch(`${base}/login`);
    const csrfCookie = login.headers.getSetCookie().map((c) => c.split(";")[0]);
    const token = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1] ?? "";
    const signed = await fetch(`${base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrfCookie.join("; ") },
      body: new URLSearchParams({ _csrf: token, username: "bench", password: PASSWORD }).toString(),
    });
    const cookie = [...csrfCookie, ...signed.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");
    const get = async (path: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(`${base}${path}`, { headers: { cookie }, redirect: "manual" });
      return { status: res.status, body: await res.text() };
    };

    // A deep keyset page: follow "next" 40 pages into the list, then time that page.
    let deep = "/risk";
    for (let k = 0; k < 40; k++) {
      const next = /href="\/console(\/risk\?[^"]*after=[^"]+)" rel="next"/.exec((await get(deep)).body)?.[1];
      if (next === undefined) break;
      deep = next.replace(/&amp;/g, "&");
    }
    const pages: [string, string][] = [
      ["overview", "/"],
      ["risk_list", "/risk"],
      ["risk_band_high", "/risk?band=high"],
      ["risk_probability_range", "/risk?min_p=0.4&max_p=0.5"],
      ["risk_id_search", "/risk?q=12345"],
      ["risk_sorted_by_id", "/risk?sort=id_asc"],
      ["risk_lowest_first_band_low", "/risk?band=low&sort=risk_asc"],
      ["risk_page_41", deep],
      ["customer", `/customers/C${String(Math.ceil(ROWS / 2)).padStart(7, "0")}`],
      ["runs", "/runs"],
      ["quarantine", `/runs/${latest}/quarantine`],
      ["campaigns", "/campaigns"],
      ["campaign_builder", "/campaigns/new"],
      ["monitoring", "/monitoring"],
      ["audit", "/audit"],
      ...(process.env.CHURNOPS_HOME === undefined ? [] : ([["models", "/models"]] as [string, string][])),
      ...categorical.slice(0, 1).map((f): [string, string] => ["risk_feature_filter", `/risk?${new URLSearchParams([[f.name, f.categories[0] as string]])}`]),
      ...(categorical.length < 2
        ? []
        : [
            [
              "risk_two_feature_filters_band_high",
              `/risk?${new URLSearchParams([
                ["band", "high"],
                [(categorical[0] as { name: string }).name, categorical[0]?.categories[0] as string],
                [(categorical[1] as { name: string }).name, categorical[1]?.categories[1] as string],
              ])}`,
            ] as [string, string],
          ]),
    ];
    const results: Record<string, { status: number; p50_ms: number; p95_ms: number; max_ms: number }> = {};
    for (const [name, path] of pages) {
      for (let k = 0; k < 3; k++) await get(path);
      const times: number[] = [];
      let status = 0;
      for (let k = 0; k < REQUESTS; k++) {
        const s = performance.now();
        status = (await get(path)).status;
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      results[name] = {
        status,
        p50_ms: Number(percentile(times, 0.5).toFixed(1)),
        p95_ms: Number(percentile(times, 0.95).toFixed(1)),
        max_ms: Number((times[times.length - 1] as number).toFixed(1)),
      };
      log(`${name}: p95 ${results[name]?.p95_ms} ms`);
    }

    // The CSV export of the whole latest run, with the process's memory sampled while it streams.
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 50);
    const s = performance.now();
    const res = await fetch(`${base}/risk.csv`, { headers: { cookie } });
    let lines = 0;
    let bytes = 0;
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength;
      const text = decoder.decode(chunk, { stream: true });
      for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines++;
    }
    const seconds = (performance.now() - s) / 1000;
    clearInterval(sampler);
    const rows = lines - 1;
    const slowest = Object.entries(results).sort((a, b) => b[1].p95_ms - a[1].p95_ms)[0];
    process.stdout.write(
      `${JSON.stringify(
        {
          benchmark: "console_pages",
          store: DIALECT,
          scores_per_run: ROWS,
          runs: 2,
          requests_per_page: REQUESTS,
          timing: "round trip on 127.0.0.1 over keep-alive (≥ server time)",
          load_average_1m: Number(loadavg()[0]?.toFixed(2)),
          pages: results,
          slowest_page: slowest === undefined ? null : { page: slowest[0], p95_ms: slowest[1].p95_ms },
          pages_over_150ms_p95: Object.entries(results)
            .filter(([, r]) => r.p95_ms > 150)
            .map(([k]) => k),
          csv_export: {
            status: res.status,
            rows,
            bytes,
            seconds: Number(seconds.toFixed(2)),
            rows_per_s: Math.round(rows / seconds),
            rss_before_mb: Math.round(rssBefore / 2 ** 20),
            rss_peak_mb: Math.round(rssPeak / 2 ** 20),
          },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await app.close();
    await store.close();
    if (KEEP) log(`kept the seeded store: ${url}`);
    else await cleanup();
  }
}

await main();
