/**
 * A known API key and the `wrangler dev` vars that turn authentication on with it, for e2e tests that run
 * the service as it is deployed (auth on) rather than with EDGELOCK_INSECURE_NO_AUTH.
 */
import { createHash, randomBytes } from "node:crypto";

export interface KeyedServer {
  /** The raw key, as a client holds it. */
  key: string;
  /** Pass as `startWranglerDev({ vars })`. */
  vars: Record<string, string>;
}

export function withApiKey(name: string, role: "read" | "write" | "admin" = "admin"): KeyedServer {
  const key = `elk_${randomBytes(32).toString("base64url")}`;
  const sha256 = createHash("sha256").update(key, "utf8").digest("hex");
  const keys = JSON.stringify([{ name, sha256, role, prefixes: ["*"] }]);
  return { key, vars: { EDGELOCK_INSECURE_NO_AUTH: "false", EDGELOCK_KEYS: keys } };
}
