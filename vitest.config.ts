import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/fixture.ts"],
    // Tests share one trained fixture bundle; files run in parallel workers, each test file owns its own store.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
  },
});
