/**
 * edgelock over raw HTTP (Node's global fetch keeps connections alive), not the client library: one
 * acquire request with `waitMs` (held open by the lock object and answered on hand-off), one release.
 * Waits longer than the server's 25 s cap re-poll with the same leaseId, as docs/api.md describes.
 */
import { randomBytes } from "node:crypto";

const MAX_WAIT_MS = 25_000;

export function createEdgelock({ url, headers = {}, label = "edgelock" }) {
  const stats = { requests: 0 };
  const base = { "content-type": "application/json", ...headers };

  async function post(name, op, body) {
    stats.requests++;
    const res = await fetch(`${url}/v1/locks/${encodeURIComponent(name)}/${op}`, {
      method: "POST",
      headers: base,
      body: JSON.stringify(body),
    });
    const json = await res.json();
    return { status: res.status, json };
  }

  return {
    label,
    stats,
    /** Resolves the lease, or null when `waitMs` ran out first. */
    async acquire(name, { ttlMs, waitMs = 0 }) {
      const leaseId = randomBytes(12).toString("base64url");
      const deadline = Date.now() + waitMs;
      for (;;) {
        const wait = Math.max(0, Math.min(MAX_WAIT_MS, deadline - Date.now()));
        const { status, json } = await post(name, "acquire", { ttlMs, waitMs: wait, leaseId });
        if (status === 200) return { name, leaseId, token: json.token, expiresAt: json.expiresAt };
        if (status !== 409 && status !== 503) throw new Error(`acquire ${name}: ${status} ${json.code}`);
        if (Date.now() >= deadline) {
          if (wait > 0) await post(name, "release", { leaseId });
          return null;
        }
      }
    },
    async release(lease) {
      const { status, json } = await post(lease.name, "release", { leaseId: lease.leaseId });
      if (status !== 200) throw new Error(`release ${lease.name}: ${status} ${json.code}`);
    },
    async close() {},
  };
}
