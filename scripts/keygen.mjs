#!/usr/bin/env node
/**
 * Makes a new edgelock API key and its EDGELOCK_KEYS entry. The key is printed once, for the client; only
 * its SHA-256 goes into the entry, which is what the Worker stores. Needs only Node (no wrangler).
 *
 *   node scripts/keygen.mjs --name billing-rw --role write --prefix billing:
 *   node scripts/keygen.mjs --name ops --role admin --prefix '*'
 *   node scripts/keygen.mjs --hash <key>         # the SHA-256 of an existing key
 */
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

const ROLES = ["read", "write", "admin"];

export function newKey() {
  return `elk_${randomBytes(32).toString("base64url")}`;
}

export function sha256Hex(key) {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export function keyEntry({ name, role, prefixes, key }) {
  return { name, sha256: sha256Hex(key), role, prefixes };
}

function main() {
  const { values } = parseArgs({
    options: {
      name: { type: "string" },
      role: { type: "string", default: "write" },
      prefix: { type: "string", multiple: true },
      hash: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: node scripts/keygen.mjs --name NAME --role read|write|admin --prefix P [--prefix P...]",
    );
    console.log("       node scripts/keygen.mjs --hash KEY");
    return;
  }
  if (values.hash !== undefined) {
    console.log(sha256Hex(values.hash));
    return;
  }
  if (!values.name || !values.prefix?.length || !ROLES.includes(values.role)) {
    console.error("need --name, --role (read|write|admin) and at least one --prefix ('*' for every lock)");
    process.exit(2);
  }
  const key = newKey();
  const entry = keyEntry({ name: values.name, role: values.role, prefixes: values.prefix, key });
  console.error(`key for "${values.name}" (give it to the client; it is not stored anywhere):`);
  console.log(key);
  console.error(
    "\nits EDGELOCK_KEYS entry (add it to the JSON array, then `wrangler secret put EDGELOCK_KEYS`):",
  );
  console.log(JSON.stringify(entry));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
