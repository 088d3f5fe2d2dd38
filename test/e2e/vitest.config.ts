import { defineConfig } from "vitest/config";

// End-to-end tests: real `wrangler dev` and OS processes, in plain Node, one file at a time.
export default defineConfig({
  test: {
    environment: "node",
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
