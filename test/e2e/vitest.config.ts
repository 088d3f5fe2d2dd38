import { defineConfig } from "vitest/config";

/**
 * End-to-end tests: plain Node, talking over real HTTP to local servers they start from separate OS processes.
 * The suite runs twice, once per local path (test/e2e/helpers/wrangler-dev.ts reads E2E_SERVER), one path
 * after the other and one file at a time: each file starts its own workerd, and the machine has 2 cores.
 * chaos.test.ts runs in the direct project only: its 60 s run starts chaos/run.ts's default server, the
 * direct path (the one `npm start` serves); chaos-check.test.ts (the checker on synthetic logs) needs no server;
 * chaos-proxy.test.ts tests the harness's proxy, not the server's paths. The Python client's suite and the
 * browser test of the live page (live-page.test.ts) run against `wrangler dev` only, as their issues ask:
 * they test a client and a page, and the two paths are compared by the rest of the suite.
 */
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    projects: [
      {
        extends: true,
        test: {
          name: "direct",
          exclude: ["test/e2e/live-page.test.ts", "test/e2e/python-client.test.ts"],
          env: { E2E_SERVER: "direct" },
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: "wrangler-dev",
          exclude: ["test/e2e/chaos.test.ts", "test/e2e/chaos-check.test.ts", "test/e2e/chaos-proxy.test.ts"],
          env: { E2E_SERVER: "wrangler-dev" },
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
