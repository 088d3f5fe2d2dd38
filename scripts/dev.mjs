#!/usr/bin/env node
/**
 * `npm start`: `wrangler dev` with authentication on and a development key ready. The first run writes
 * .dev.vars (git-ignored) with an admin key's hash as EDGELOCK_KEYS, and keeps the key itself in a comment
 * there so that every start can print it. `npm start -- --insecure` runs with authentication off instead
 * (EDGELOCK_INSECURE_NO_AUTH=true), loudly. Any other arguments go to `wrangler dev`.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { keyEntry, newKey } from "./keygen.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEV_VARS = join(ROOT, ".dev.vars");
const KEY_COMMENT = "# edgelock development key (local only): ";

const args = process.argv.slice(2);
const insecure = args.includes("--insecure");
const wranglerArgs = ["dev", ...args.filter((a) => a !== "--insecure")];

if (insecure) {
  wranglerArgs.push("--var", "EDGELOCK_INSECURE_NO_AUTH:true");
  console.warn("\n!! EDGELOCK_INSECURE_NO_AUTH=true: authentication is OFF. Never expose this server.\n");
} else {
  const key = ensureDevKey();
  const port = portArg() ?? "8787";
  console.log(
    key === null
      ? "\nedgelock: using EDGELOCK_KEYS from .dev.vars (its keys are not recorded there).\n"
      : `\nedgelock development key (admin, every lock; stored in .dev.vars):\n\n  ${key}\n\n` +
          `  curl -H 'authorization: Bearer ${key}' http://localhost:${port}/v1/locks/demo\n`,
  );
}

const child = spawn("wrangler", wranglerArgs, {
  cwd: ROOT,
  stdio: "inherit",
  env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/** The development key, creating .dev.vars with it if there are no keys yet; null if keys exist without it. */
function ensureDevKey() {
  const text = existsSync(DEV_VARS) ? readFileSync(DEV_VARS, "utf8") : "";
  const recorded = text.split("\n").find((line) => line.startsWith(KEY_COMMENT));
  if (/^\s*EDGELOCK_KEYS\s*=/m.test(text)) return recorded?.slice(KEY_COMMENT.length).trim() ?? null;
  const key = newKey();
  const entry = keyEntry({ name: "dev", role: "admin", prefixes: ["*"], key });
  const lines = [
    "# Written by scripts/dev.mjs for `npm start`. Never commit this file (it is in .gitignore).",
    `${KEY_COMMENT}${key}`,
    `EDGELOCK_KEYS='${JSON.stringify([entry])}'`,
  ];
  writeFileSync(DEV_VARS, `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${lines.join("\n")}\n`, {
    mode: 0o600,
  });
  console.log(`edgelock: wrote a development key to ${DEV_VARS}`);
  return key;
}

function portArg() {
  const i = wranglerArgs.indexOf("--port");
  if (i >= 0) return wranglerArgs[i + 1];
  return wranglerArgs.find((a) => a.startsWith("--port="))?.slice("--port=".length);
}
