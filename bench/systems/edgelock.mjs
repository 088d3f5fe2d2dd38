/**
 * edgelock over raw HTTP (bench/http.mjs: Node's http, connections kept alive), not the client library: one
 * acquire request with `waitMs` (held open by the lock object and answered on hand-off), one release.
 * A wait longer than one request's cap (`maxWaitMs`, default the server's MAX_WAIT_MS) re-polls with the same
 * leaseId as docs/api.md "Waiting" says: `repoll: true` on every request but the last, and the next request
 * at once when a 409 has `position`. `repoll: false` drops the promise (the bench's control for overtakes).
 */
import { randomBytes } from "node:crypto";
import { MAX_WAIT_MS } from "../../client/src/protocol.ts";
import { postJson } from "../http.mjs";

/** 409s that say "not yet" (docs/api.md): re-poll while the wait lasts. Any other answer is a bench bug. */
export const BUSY = new Set(["lock_held", "waiters_ahead", "lock_delay"]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function createEdgelock({
  url,
  headers = {},
  label = "edgelock",
  maxWaitMs = MAX_WAIT_MS,
  repoll = true,
}) {
  const stats = { requests: 0, repolls: 0 };

  async function post(name, op, body) {
    stats.requests++;
    return postJson(`${url}/v1/locks/${encodeURIComponent(name)}/${op}`, body, headers);
  }

  return {
    label,
    stats,
    /**
     * Resolves the lease, or null when `waitMs` ran out first. `requestedAt`: when the first request of
     * this acquire left the client (epoch ms), the time the bench's overtake count on the wire goes by;
     * `reachedAt`: when it reached the lock, by the lock's clock, which the count at the lock goes by.
     */
    async acquire(name, { ttlMs, waitMs = 0 }) {
      let leaseId = randomBytes(12).toString("base64url");
      let requestedAt;
      const deadline = Date.now() + waitMs;
      for (let first = true; ; first = false) {
        const left = Math.max(0, deadline - Date.now());
        const wait = Math.min(maxWaitMs, left);
        const body = { ttlMs, waitMs: wait, leaseId };
        if (repoll && left > wait) body.repoll = true;
        if (!first) stats.repolls++;
        const { status, json, sentAt } = await post(name, "acquire", body);
        if (first) requestedAt = sentAt;
        if (status === 200) {
          // When the answered request reached the lock, by its clock (docs/api.md, `validForMs`): for a
          // wait within one request, when this waiter took its place. A re-poll's is not, so none then.
          const reachedAt = first ? json.expiresAt - json.validForMs : undefined;
          return { name, leaseId, token: json.token, expiresAt: json.expiresAt, requestedAt, reachedAt };
        }
        const busy = (status === 409 && BUSY.has(json.code)) || status === 503;
        if (!busy) throw new Error(`acquire ${name}: ${status} ${json.code}`);
        if (Date.now() >= deadline) {
          if (wait > 0) await post(name, "release", { leaseId });
          return null;
        }
        // Queued: re-poll at once with the id the queue knows. Not queued (a lock-delay, a restart):
        // wait out the server's hint first, as the client library does.
        if (json.position !== undefined) leaseId = json.leaseId ?? leaseId;
        else await sleep(Math.min(deadline - Date.now(), Math.max(json.retryAfterMs ?? 0, 50)));
      }
    },
    async release(lease) {
      const { status, json } = await post(lease.name, "release", { leaseId: lease.leaseId });
      if (status !== 200) throw new Error(`release ${lease.name}: ${status} ${json.code}`);
    },
    async close() {},
  };
}
