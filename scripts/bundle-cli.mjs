// Bundles the compiled CLI (dist/cli/main.js and the worker threads it starts) into a few files at the top of
// dist/, which bin/churnops.js runs. Why: Node resolves, reads and links every ES module one by one, and the CLI's
// pure-JavaScript dependencies are hundreds of small modules (kysely alone is 263, zod 95); loading them cost
// about 0.4 s of every command before it did anything (docs/performance.md). Bundled, the same code loads in a
// few tens of milliseconds.
//
// Only packages known to be plain JavaScript that never read their own files are bundled (BUNDLED, with their
// dependencies). Native add-ons (ONNX Runtime, DuckDB's bindings, better-sqlite3, pg's optional native part), the
// HTTP server and its plugins (they read templates and assets next to their code), pino (its transports start
// threads from files beside it) and everything else stay ordinary imports from node_modules.
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

// Packages bundled with what they import (their own dependencies come along) ...
const BUNDLED = ["kysely", "zod", "commander", "smol-toml", "cli-progress", "@duckdb/node-api", "onnx-proto", "pino-pretty", "@stdlib/"];
// ... except native add-ons, which must load from node_modules whoever imports them.
const NATIVE = new Set(["@duckdb/node-bindings", "onnxruntime-node", "better-sqlite3", "pg"]);
const packageOf = (spec) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
const listed = (pkg) => BUNDLED.some((b) => (b.endsWith("/") ? pkg.startsWith(b) : pkg === b));

/** Which bare imports are bundled: a listed package from our code, anything a bundled package imports; never a native one. */
const onlyListedPackages = {
  name: "only-listed-packages",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const pkg = packageOf(args.path);
      const fromPackage = args.importer.includes("/node_modules/");
      const bundled = !args.path.startsWith("node:") && !NATIVE.has(pkg) && (fromPackage || listed(pkg));
      return bundled ? undefined : { path: args.path, external: true };
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
    "prediction-writer": join(DIST, "store", "prediction-writer.js"),
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
