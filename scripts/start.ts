/**
 * `npm start` serves edgelock on the direct local path (scripts/direct-server.ts: the current sources bundled
 * once, Miniflare with a socket on the Worker, state in .wrangler/state). `npm run dev` runs `wrangler dev`
 * instead, which reloads on every change but puts its dev proxy in front of each request. Both keep auth on
 * with a development key: the first run writes .dev.vars (git-ignored) with an admin key's hash as
 * EDGELOCK_KEYS and keeps the key itself in a comment there, so every start can print it. `--insecure` turns
 * auth off (EDGELOCK_INSECURE_NO_AUTH=true), loudly. This file is not the server: it only picks and starts one.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { serveDirect, stopOnSignal } from "./direct-server.ts";
import { keyEntry, newKey } from "./keygen.mjs";
import { ROOT_DIR, WRANGLER_BIN, WRANGLER_ENV } from "./local-server.ts";

const DEV_VARS = join(ROOT_DIR, ".dev.vars");
const KEY_COMMENT = "# edgelock development key (local only): ";
const INSECURE_VAR = "EDGELOCK_INSECURE_NO_AUTH";

const USAGE = `usage: npm start -- [--port 8787] [--ip localhost] [--persist-to .wrangler/state] [--insecure]
                    [--log-requests]
       npm run dev -- [--insecure] [any wrangler dev option]`;

/**
 * One JSON line per request is what a deployed Worker's logs are for; on the local runtime each line goes
 * through Miniflare in Node and doubled the served path's latency (bench/RESULTS.md), so `npm start`
 * leaves them off unless `--log-requests`. Other log lines (errors, force-release audits) stay.
 */
const QUIET_REQUESTS = { EDGELOCK_REQUEST_LOG: "off" };

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--dev") return wranglerDev(argv.slice(1));
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8787" },
      ip: { type: "string", default: "localhost" },
      "persist-to": { type: "string", default: join(ROOT_DIR, ".wrangler/state") },
      insecure: { type: "boolean", default: false },
      "log-requests": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const vars = {
    ...authVars(values.insecure, values.port),
    ...(values["log-requests"] ? {} : QUIET_REQUESTS),
  };
  const server = await serveDirect({
    config: join(ROOT_DIR, "wrangler.toml"),
    ip: values.ip,
    port: Number(values.port),
    persistTo: values["persist-to"],
    vars,
  });
  stopOnSignal(server);
  console.log(
    `edgelock is serving on ${server.url} (direct local path; state in ${values["persist-to"]}).\n` +
      "It runs the sources as they were at this start: restart it after a change, or use `npm run dev`.",
  );
}

/** `wrangler dev` with the same key handling; every argument but --insecure is passed through. */
function wranglerDev(argv: string[]): void {
  const insecure = argv.includes("--insecure");
  const args = [WRANGLER_BIN, "dev", ...argv.filter((a) => a !== "--insecure")];
  for (const [k, v] of Object.entries(authVars(insecure, portArg(args) ?? "8787")))
    args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT_DIR,
    stdio: "inherit",
    env: { ...process.env, ...WRANGLER_ENV },
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/** Vars for the chosen auth mode, after making sure of (and printing) the development key. */
function authVars(insecure: boolean, port: string): Record<string, string> {
  if (insecure) {
    console.warn(`\n!! ${INSECURE_VAR}=true: authentication is OFF. Never expose this server.\n`);
    return { [INSECURE_VAR]: "true" };
  }
  const key = ensureDevKey();
  console.log(
    key === null
      ? "\nedgelock: using EDGELOCK_KEYS from .dev.vars (its keys are not recorded there).\n"
      : `\nedgelock development key (admin, every lock; stored in .dev.vars):\n\n  ${key}\n\n` +
          `  curl -H 'authorization: Bearer ${key}' http://localhost:${port}/v1/locks/demo\n`,
  );
  return {};
}

/** The development key, creating .dev.vars with it if there are no keys yet; null if keys exist without it. */
function ensureDevKey(): string | null {
  const text = existsSync(DEV_VARS) ? readFileSync(DEV_VARS, "utf8") : "";
  const recorded = text.split("\n").find((line) => line.startsWith(KEY_COMMENT));
  if (/^\s*EDGELOCK_KEYS\s*=/m.test(text)) return recorded?.slice(KEY_COMMENT.length).trim() ?? null;
  const key = newKey();
  const entry = keyEntry({ name: "dev", role: "admin", prefixes: ["*"], key });
  const lines = [
    "# Written by scripts/start.ts for `npm start`. Never commit this file (it is in .gitignore).",
    `${KEY_COMMENT}${key}`,
    `EDGELOCK_KEYS='${JSON.stringify([entry])}'`,
  ];
  writeFileSync(DEV_VARS, `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${lines.join("\n")}\n`, {
    mode: 0o600,
  });
  console.log(`edgelock: wrote a development key to ${DEV_VARS}`);
  return key;
}

function portArg(args: string[]): string | undefined {
  const i = args.indexOf("--port");
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith("--port="))?.slice("--port=".length);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const usageError =
    err instanceof TypeError && String((err as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
  console.error(usageError ? `${err.message}\n${USAGE}` : err);
  process.exit(1);
});
