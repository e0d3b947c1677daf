// Bundles the compiled CLI (dist/cli/main.js and the worker threads it starts) into a few files at the top of
// dist/, which bin/churnops.js runs. Why: Node resolves, reads and links every ES module one by one, and the CLI's
// pure-JavaScript dependencies are hundreds of small modules (kysely alone is 263, zod 95); loading them cost
// about 0.4 s of every command before it did anything (docs/performance.md). Bundled, the same code loads in a
// few tens of milliseconds.
//
// Only packages known to be plain JavaScript that never read their own files are bundled (BUNDLED). Native
// add-ons (ONNX Runtime, DuckDB's bindings, better-sqlite3), the HTTP server's plugins (they read templates and
// assets next to their code) and everything else stay ordinary imports from node_modules.
//
// The output is flat on purpose: a worker is started as `new URL("./<name>.js", import.meta.url)` (src/worker.ts)
// from whichever chunk the caller landed in, and PROJECT_ROOT is the parent of the folder holding config.ts's code.
// Both hold when every bundled file sits directly in dist/, as the compiled dist/*.js files do.
import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");

const BUNDLED = new Set(["kysely", "zod", "commander", "smol-toml", "cli-progress", "@duckdb/node-api", "onnx-proto", "protobufjs"]);
const packageOf = (spec) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);

/** Relative imports and the BUNDLED packages are bundled; every other bare import stays external. */
const onlyListedPackages = {
  name: "only-listed-packages",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("node:") || !BUNDLED.has(packageOf(args.path)) || args.kind === "entry-point") {
        return args.kind === "entry-point" ? undefined : { path: args.path, external: true };
      }
      return undefined;
    });
  },
};

// Chunks of an earlier build would stay beside the new ones (their names are content hashes).
for (const f of await readdir(DIST)) if (f.startsWith("chunk-")) await rm(join(DIST, f));
const result = await build({
  entryPoints: {
    "churnops-cli": join(DIST, "cli", "main.js"),
    "inference-worker": join(DIST, "model", "inference-worker.js"),
    "score-writer": join(DIST, "store", "score-writer.js"),
    "file-sink-worker": join(DIST, "scoring", "file-sink-worker.js"),
    "prediction-writer": join(DIST, "server", "prediction-writer.js"),
  },
  outdir: DIST,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunk-[hash]",
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
  plugins: [onlyListedPackages],
  // Bundled CommonJS packages call require(); an ES module has none of its own.
  banner: { js: 'import { createRequire as __churnopsRequire } from "node:module"; const require = __churnopsRequire(import.meta.url);' },
});
const outputs = Object.keys(result.metafile.outputs).filter((f) => !f.endsWith(".map"));
console.log(`bundled the CLI into ${outputs.length} files in dist/`);
