/**
 * Scenario 7, RPC vs HTTP from a bound Worker: edgelock and a caller Worker (bench/binding) in one workerd,
 * the caller timing uncontended acquire + release pairs over edgelock's EdgelockRpc entrypoint and over its
 * HTTP entrypoint through the same kind of service binding, with the client library and with bare calls.
 * Nothing crosses a socket, so the difference is what HTTP and JSON cost inside the runtime.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { bundle } from "../../scripts/direct-server.ts";
import { BENCH_DIR, EDGELOCK_VARS, ROOT_DIR } from "../config.mjs";
import { summarize } from "../stats.mjs";

const PATHS = ["client over RPC", "client over HTTP binding", "bare RPC calls", "bare HTTP binding requests"];

/** Wrangler's own Miniflare, as the other workerd runs use it. */
async function loadMiniflare() {
  const fromWrangler = createRequire(join(ROOT_DIR, "node_modules/wrangler/package.json"));
  return import(pathToFileURL(fromWrangler.resolve("miniflare")).href);
}

export async function rpcVersusHttp({ uncontendedPairs: pairs }, tmp) {
  const [edgelock, caller] = await Promise.all([
    bundle(join(ROOT_DIR, "wrangler.toml"), join(tmp, "binding/edgelock")),
    bundle(join(BENCH_DIR, "binding/wrangler.toml"), join(tmp, "binding/caller")),
  ]);
  const { Miniflare, convertV4MiniflareOptions, Log, LogLevel } = await loadMiniflare();
  const worker = (script) => ({
    compatibilityDate: "2026-11-01",
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
  });
  const options = {
    log: new Log(LogLevel.WARN),
    defaultPersistRoot: join(tmp, "binding/state"),
    workers: [
      {
        name: "edgelock-bench-caller",
        ...worker(caller),
        bindings: { BENCH_API_KEY: process.env.BENCH_API_KEY ?? "" },
        serviceBindings: {
          EDGELOCK: { name: "edgelock", entrypoint: "EdgelockRpc" },
          EDGELOCK_HTTP: "edgelock",
        },
      },
      {
        name: "edgelock",
        ...worker(edgelock),
        bindings: EDGELOCK_VARS,
        durableObjects: { LOCK: { className: "LockObject", useSQLite: true } },
      },
    ],
  };
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  try {
    const out = {};
    for (const path of PATHS) {
      const url = `http://caller/run?path=${encodeURIComponent(path)}&pairs=${pairs}`;
      const res = await mf.dispatchFetch(url);
      if (!res.ok) throw new Error(`bench caller, ${path}: HTTP ${res.status} ${await res.text()}`);
      const { latencies, totalMs } = await res.json();
      out[path] = { pair: summarize(latencies), pairsPerSec: Math.round((pairs / totalMs) * 1000) };
    }
    return out;
  } finally {
    await mf.dispose();
  }
}

/** The scenario's section of the report. */
export function rpcSection(rpc) {
  const lines = [
    "### 7. From a bound Worker: Workers RPC vs HTTP (uncontended acquire + release pairs, ms, timed inside workerd)",
    "",
    "| path | p50 | p90 | p99 | max | pairs/s |",
    "|---|---|---|---|---|---|",
  ];
  for (const [path, r] of Object.entries(rpc)) {
    lines.push(
      `| ${path} | ${r.pair.p50} | ${r.pair.p90} | ${r.pair.p99} | ${r.pair.max} | ${r.pairsPerSec} |`,
    );
  }
  return lines.join("\n");
}
