/**
 * The direct local path: bundles a Worker config's current sources as `wrangler deploy` would, then serves
 * the bundle with wrangler's own Miniflare on a direct socket on the Worker (no dev proxy, no entry worker in
 * front). Bindings, vars and `.dev.vars` are read the way `wrangler dev` reads them, and state persists in
 * the same on-disk layout as `wrangler dev --persist-to`. Not a development server: nothing reloads.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs, promisify } from "node:util";
// Types only: the hoisted miniflare is the Vitest plugin's 5.x; at run time wrangler's own copy is loaded.
import type * as MiniflareModule from "miniflare";
import { ROOT_DIR, WRANGLER_BIN, WRANGLER_ENV } from "./local-server.ts";

export interface DirectServerOptions {
  /** The wrangler config file of the Worker to serve. */
  config: string;
  /** Address and port of the direct socket: the URL clients use. */
  ip: string;
  port: number;
  /** Like `wrangler dev --persist-to`: state goes under `<persistTo>/v3`. */
  persistTo: string;
  /** Like `wrangler dev --var K:V`: override the config's vars and `.dev.vars`. */
  vars?: Record<string, string>;
  /** Port of Miniflare's ordinary socket (entry worker first), on 127.0.0.1. @default a free port */
  entryPort?: number;
}

export interface DirectServer {
  /** The direct socket on the Worker. */
  url: string;
  /** Miniflare's own socket, which runs its entry worker before the Worker (the bench's breakdown). */
  entryUrl: string;
  dispose(): Promise<void>;
}

/** Bundles and starts the Worker; resolves once its direct socket accepts connections. */
export async function serveDirect(o: DirectServerOptions): Promise<DirectServer> {
  const outDir = mkdtempSync(join(tmpdir(), "edgelock-bundle-"));
  try {
    // The bundler runs as its own process; loading wrangler and Miniflare here meanwhile uses the other core.
    const bundled = bundle(o.config, outDir);
    bundled.catch(() => {}); // awaited below; if something fails first, that error is the one reported
    const { unstable_getMiniflareWorkerOptions, unstable_readConfig } = await import("wrangler");
    const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = await loadMiniflare();
    const config = unstable_readConfig({ config: o.config });
    // modulesRules say how wrangler's bundler treats imports; Miniflare loads the finished bundle instead.
    const { modulesRules: _, ...workerOptions } = unstable_getMiniflareWorkerOptions(o.config).workerOptions;
    // wrangler's types lose every option's own type here (Omit over an index signature leaves `unknown`).
    const configVars = (workerOptions.bindings ?? {}) as Record<string, MiniflareModule.Json>;
    const script = await bundled;
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        ...workerOptions,
        name: config.name,
        scriptPath: script,
        modulesRoot: outDir,
        modules: true,
        bindings: { ...configVars, ...o.vars },
        host: "127.0.0.1",
        port: o.entryPort ?? 0,
        unsafeDirectSockets: [{ host: o.ip, port: o.port }],
        // wrangler dev passes `<persist-to>/v3` too, so both paths open the same SQLite files.
        resourcePersistencePath: join(o.persistTo, "v3"),
        cf: false,
        log: new Log(LogLevel.WARN),
      }),
    );
    const entryUrl = (await mf.ready).href.replace(/\/$/, "");
    const url = (await mf.unsafeGetDirectURL()).href.replace(/\/$/, "");
    return { url, entryUrl, dispose: () => mf.dispose() };
  } finally {
    // Miniflare has read the bundle into workerd's config by the time it is ready (or has failed).
    rmSync(outDir, { recursive: true, force: true });
  }
}

/**
 * `wrangler deploy --dry-run`: the sources as they are now, bundled as a deploy would bundle them into
 * `outDir`. Resolves the bundled script's path. Also used by the bench's RPC scenario.
 */
export async function bundle(config: string, outDir: string): Promise<string> {
  await promisify(execFile)(
    process.execPath,
    [WRANGLER_BIN, "deploy", "--dry-run", "--outdir", outDir, "-c", config],
    { cwd: dirname(resolve(config)), env: { ...process.env, ...WRANGLER_ENV } },
  );
  const script = readdirSync(outDir).find((f) => /\.m?js$/.test(f));
  if (script === undefined) throw new Error(`wrangler deploy --dry-run wrote no script to ${outDir}`);
  return join(outDir, script);
}

/** Wrangler's own Miniflare (5.x), so both local paths run the same workerd build. */
async function loadMiniflare(): Promise<typeof MiniflareModule> {
  const fromWrangler = createRequire(join(ROOT_DIR, "node_modules/wrangler/package.json"));
  return import(pathToFileURL(fromWrangler.resolve("miniflare")).href);
}

/**
 * `node scripts/direct-server.ts --config C --port P [--ip I] [--persist-to D] [--entry-port E] [--var K:V]…`
 * serves until SIGINT or SIGTERM. local-server.ts starts it this way; `npm start` calls serveDirect itself.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: join(ROOT_DIR, "wrangler.toml") },
      ip: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8787" },
      "persist-to": { type: "string", default: join(ROOT_DIR, ".wrangler/state") },
      "entry-port": { type: "string" },
      var: { type: "string", multiple: true, default: [] },
    },
  });
  const server = await serveDirect({
    config: values.config,
    ip: values.ip,
    port: Number(values.port),
    persistTo: values["persist-to"],
    vars: parseVars(values.var),
    ...(values["entry-port"] !== undefined ? { entryPort: Number(values["entry-port"]) } : {}),
  });
  console.log(`edgelock (direct) on ${server.url}`);
  stopOnSignal(server);
}

/** `K:V` pairs as `wrangler dev --var` takes them. */
function parseVars(pairs: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(":");
    if (colon <= 0) throw new Error(`--var wants KEY:VALUE, got ${JSON.stringify(pair)}`);
    vars[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return vars;
}

/** Disposes Miniflare (and so its workerd) before exiting on SIGINT or SIGTERM. */
export function stopOnSignal(server: DirectServer): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      server.dispose().finally(() => process.exit(0));
    });
  }
}

if (process.argv[1] === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
