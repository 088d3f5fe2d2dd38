/**
 * API keys for tests that run the service as it is deployed (auth on) rather than with
 * EDGELOCK_INSECURE_NO_AUTH: a key's EDGELOCK_KEYS entry, and a fresh key with the `wrangler dev` vars
 * that turn authentication on with it. Node-side (the runtime tests hash with crypto.subtle instead).
 */
import { createHash, randomBytes } from "node:crypto";

export interface KeyedServer {
  /** The raw key, as a client holds it. */
  key: string;
  /** Pass as `startWranglerDev({ vars })`. */
  vars: Record<string, string>;
}

type Role = "read" | "write" | "admin";

/** A key's entry in EDGELOCK_KEYS: its SHA-256, never the key (docs/security.md). */
export function keyEntry(name: string, key: string, role: Role, prefixes: string[] = ["*"]) {
  return { name, sha256: createHash("sha256").update(key, "utf8").digest("hex"), role, prefixes };
}

/** A fresh random key with `role` on every lock, and the vars that make a server know only it. */
export function withApiKey(name: string, role: Role = "admin"): KeyedServer {
  const key = `elk_${randomBytes(32).toString("base64url")}`;
  const keys = JSON.stringify([keyEntry(name, key, role)]);
  return { key, vars: { EDGELOCK_INSECURE_NO_AUTH: "false", EDGELOCK_KEYS: keys } };
}
