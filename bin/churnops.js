#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `make setup` / `npm run build`).
import { main } from "../dist/cli/main.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`churnops: internal error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 70;
  },
);
