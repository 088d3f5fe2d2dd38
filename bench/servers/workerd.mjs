/**
 * Starts a Worker config on the local runtime in two ways: `wrangler dev` as its own process (the path a
 * developer uses: dev proxy worker, then the user worker), and Miniflare in this process with a direct
 * socket on the user worker (the most direct path workerd offers). Both persist SQLite under `stateDir`.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT_DIR, WRANGLER_ENV } from "../config.mjs";
import { freePort, startProcess, treeRss, waitFor } from "./proc.mjs";

const WRANGLER_BIN = join(ROOT_DIR, "node_modules/wrangler/bin/wrangler.js");

async function healthy(url, headers) {
  const res = await fetch(new URL("/healthz", url), { headers });
  await res.arrayBuffer();
  return res.ok;
}

/** `wrangler dev` on 127.0.0.1 and a free port; `rss()` covers every workerd under it. */
export async function startWranglerDev({ config, stateDir, logFile, vars = {}, headers = {} }) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = [WRANGLER_BIN, "dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--inspector-ip", "127.0.0.1", "--inspector-port", String(inspectorPort));
  args.push("--persist-to", stateDir, "--log-level", "warn", "--show-interactive-dev-session=false");
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const proc = startProcess(process.execPath, args, { logFile, env: WRANGLER_ENV, cwd: ROOT_DIR });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(() => healthy(url, headers), { timeoutMs: 60_000, what: `wrangler dev (${config})` });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { path: "wrangler dev", url, rss: () => treeRss(proc.pid, "workerd"), stop: proc.stop };
}

/** Bundles a config with `wrangler deploy --dry-run`, as Miniflare 5 does not bundle TypeScript. */
export function bundle(config, outDir) {
  execFileSync(process.execPath, [WRANGLER_BIN, "deploy", "--dry-run", "--outdir", outDir, "-c", config], {
    cwd: ROOT_DIR,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: "ignore",
  });
}

/** Wrangler's own Miniflare (5.x), so both paths run the same workerd build. */
async function loadMiniflare() {
  const fromWrangler = createRequire(join(ROOT_DIR, "node_modules/wrangler/package.json"));
  return import(pathToFileURL(fromWrangler.resolve("miniflare")).href);
}

/**
 * Miniflare with a direct socket on the worker: requests skip Miniflare's entry worker and any dev proxy.
 * `entryUrl` is the ordinary Miniflare socket (entry worker first) for the breakdown.
 */
export async function startMiniflare({ script, durableObjects, stateDir, vars = {}, headers = {} }) {
  const { Miniflare, convertV4MiniflareOptions, Log, LogLevel } = await loadMiniflare();
  const options = {
    scriptPath: script,
    modulesRoot: dirname(script),
    modules: true,
    compatibilityDate: "2026-11-01",
    durableObjects,
    bindings: vars,
    host: "127.0.0.1",
    port: await freePort(),
    cf: false,
    unsafeDirectSockets: [{ host: "127.0.0.1", port: await freePort() }],
    resourcePersistencePath: stateDir,
    log: new Log(LogLevel.WARN),
  };
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  const entryUrl = (await mf.ready).href.replace(/\/$/, "");
  const url = (await mf.unsafeGetDirectURL()).href.replace(/\/$/, "");
  await waitFor(() => healthy(url, headers), { what: "miniflare" });
  return {
    path: "workerd direct",
    url,
    entryUrl,
    rss: () => treeRss(process.pid, "workerd"),
    stop: () => mf.dispose(),
  };
}
