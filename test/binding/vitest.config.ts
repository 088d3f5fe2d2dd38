/**
 * The binding tests: the Worker under test is a second Worker (caller-worker.ts) with service bindings to
 * edgelock, which runs beside it as an auxiliary Worker named "edgelock", built from the real wrangler.toml
 * by `wrangler deploy --dry-run` (auxiliary Workers must be JavaScript), with auth on and one known key.
 */
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { keyEntry } from "../e2e/helpers/api-key.ts";
import { BINDING_KEYS } from "./keys.ts";

const ROOT = resolve(import.meta.dirname, "../..");

function bundleEdgelock(): { scriptPath: string; modulesRoot: string } {
  // Rebuilt on every start into one git-ignored place, so runs leave nothing behind in /tmp.
  const outDir = join(ROOT, ".wrangler/tmp/test-binding");
  execFileSync(
    join(ROOT, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--outdir", outDir, "-c", join(ROOT, "wrangler.toml")],
    { cwd: ROOT, stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  return { scriptPath: join(outDir, "index.js"), modulesRoot: outDir };
}

export default defineConfig({
  plugins: [
    cloudflareTest(() => ({
      wrangler: { configPath: join(ROOT, "test/binding/wrangler.toml") },
      miniflare: {
        bindings: { EDGELOCK_TOKEN: BINDING_KEYS.write },
        workers: [
          {
            name: "edgelock",
            modules: true,
            ...bundleEdgelock(),
            compatibilityDate: "2026-11-01",
            durableObjects: { LOCK: { className: "LockObject", useSQLite: true } },
            bindings: {
              EDGELOCK_KEYS: JSON.stringify([
                keyEntry("caller", BINDING_KEYS.write, "write", ["bound:"]),
                keyEntry("reader", BINDING_KEYS.read, "read", ["bound:"]),
              ]),
              EDGELOCK_CORS_ORIGINS: "",
            },
          },
        ],
      },
    })),
  ],
  // Relative to this folder, the project's root.
  test: { name: "binding", include: ["*.test.ts"] },
});
