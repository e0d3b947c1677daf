#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ and bundled into dist/churnops-cli.js (by `make setup` / `npm run
// build`; see scripts/bundle-cli.mjs for why it is bundled).
import { main } from "../dist/churnops-cli.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`churnops: internal error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 70;
  },
);
