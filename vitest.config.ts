import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // The Worker under test runs with authentication off, explicitly, so that lock tests need no
            // keys (a key set in a local .dev.vars does not turn it back on). Auth tests call
            // `app.request()` with their own env instead: see test/helpers/auth.ts. Per-request log lines are
            // off too (test/pages-and-logs.test.ts turns them on where it reads them).
            miniflare: { bindings: { EDGELOCK_INSECURE_NO_AUTH: "true", EDGELOCK_REQUEST_LOG: "off" } },
          }),
        ],
        test: {
          name: "edgelock",
          include: ["test/**/*.test.ts", "durable-objects/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/binding/**"],
        },
      },
      // A second Worker bound to edgelock (service binding, Workers RPC): see test/binding/.
      "./test/binding/vitest.config.ts",
    ],
  },
});
