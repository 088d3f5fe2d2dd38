// Adds lockfile entries for optional platform packages (other OSes' biome, workerd, esbuild, ...) that
// this machine's npm registry does not serve. Without them `npm ci` refuses the lockfile as out of sync;
// with them it sees each entry, finds the os/cpu does not match and skips it, as it does anywhere else.
// Run after `npm install` changes dependencies: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const OS = [
  "darwin",
  "linux",
  "win32",
  "android",
  "freebsd",
  "openbsd",
  "netbsd",
  "sunos",
  "aix",
  "openharmony",
];
const CPU = ["arm64", "x64", "ia32", "arm", "loong64", "mips64el", "ppc64", "riscv64", "s390x", "wasm32"];
const ALIASES = { windows: "win32", 64: "x64", macos: "darwin" };

function platformOf(name) {
  const parts = name
    .split("/")
    .pop()
    .split("-")
    .map((p) => ALIASES[p] ?? p);
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.find((p) => CPU.includes(p));
  return os === undefined && cpu === undefined ? null : { os, cpu };
}

/** Whether `dep`, required by the package at `key`, already has an entry that node's lookup would find. */
function resolves(key, dep, version) {
  let dir = key;
  for (;;) {
    const hit = lock.packages[`${dir === "" ? "" : `${dir}/`}node_modules/${dep}`];
    if (hit !== undefined) return hit.version === version;
    if (dir === "") return false;
    const cut = dir.lastIndexOf("/node_modules/");
    dir = cut === -1 ? "" : dir.slice(0, cut);
  }
}

let added = 0;
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const platform = platformOf(dep);
    if (platform === null || resolves(key, dep, version)) continue;
    // Hoisted when the root has no copy of that package; nested beside its parent otherwise.
    const root = `node_modules/${dep}`;
    const target = lock.packages[root] === undefined || key === "" ? root : `${key}/node_modules/${dep}`;
    lock.packages[target] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      ...(platform.os ? { os: [platform.os] } : {}),
      ...(platform.cpu ? { cpu: [platform.cpu] } : {}),
    };
    added += 1;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : a.localeCompare(b))),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entries`);
