import { main } from "../../src/cli/main.js";

// The same entry as bin/churnops.js, from source, so tests need no build step.
process.exitCode = await main(process.argv);
