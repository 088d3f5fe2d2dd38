import { defineConfig } from "vitest/config";

/** End-to-end tests: plain Node, talking over real HTTP to `wrangler dev` processes they start. */
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
