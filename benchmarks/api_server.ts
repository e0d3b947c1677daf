// `churnops` from source for the API benchmarks (no build step): `node --import tsx benchmarks/api_server.ts serve …`.
import { main } from "../src/cli/main.js";

process.exitCode = await main(process.argv);
