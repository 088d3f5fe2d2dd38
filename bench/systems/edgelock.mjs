/**
 * edgelock over raw HTTP (Node's global fetch keeps connections alive), not the client library: one
 * acquire request with `waitMs` (held open by the lock object and answered on hand-off), one release.
 * A wait longer than one request's cap (`maxWaitMs`, default the server's MAX_WAIT_MS) re-polls with the same
 * leaseId as docs/api.md "Waiting" says: `repoll: true` on every request but the last, and the next request
 * at once when a 409 has `position`. `repoll: false` drops the promise (the bench's control for overtakes).
 */
import { randomBytes } from "node:crypto";
import diagnostics from "node:diagnostics_channel";
import { MAX_WAIT_MS } from "../../client/src/protocol.ts";

/**
 * When each tagged request's body left this process (epoch ms), from undici's diagnostics channel: the
 * moment an acquire took its place in line, as near as a client can see it. Timing the call's start
 * instead counted up to 19 ms of client-side delay before the request left (RESULTS.md, "Overtakes").
 */
const TAG = "x-bench-request";
const bodySentAt = new Map();
diagnostics.subscribe("undici:request:bodySent", ({ request }) => {
  const headers = Array.isArray(request.headers) ? request.headers : [];
  const at = headers.indexOf(TAG);
  if (at >= 0 && at % 2 === 0) bodySentAt.set(headers[at + 1], performance.timeOrigin + performance.now());
});

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
  const base = { "content-type": "application/json", ...headers };

  async function post(name, op, body, tag) {
    stats.requests++;
    const res = await fetch(`${url}/v1/locks/${encodeURIComponent(name)}/${op}`, {
      method: "POST",
      headers: tag === undefined ? base : { ...base, [TAG]: tag },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    return { status: res.status, json };
  }

  return {
    label,
    stats,
    /**
     * Resolves the lease, or null when `waitMs` ran out first. `requestedAt`: when the first request of
     * this acquire left the client (epoch ms), the time the bench's overtake count goes by.
     */
    async acquire(name, { ttlMs, waitMs = 0 }) {
      let leaseId = randomBytes(12).toString("base64url");
      const tag = leaseId;
      let requestedAt;
      const deadline = Date.now() + waitMs;
      for (let first = true; ; first = false) {
        const left = Math.max(0, deadline - Date.now());
        const wait = Math.min(maxWaitMs, left);
        const body = { ttlMs, waitMs: wait, leaseId };
        if (repoll && left > wait) body.repoll = true;
        if (!first) stats.repolls++;
        const { status, json } = await post(name, "acquire", body, first ? tag : undefined);
        if (first) {
          requestedAt = bodySentAt.get(tag);
          bodySentAt.delete(tag);
        }
        if (status === 200) {
          return { name, leaseId, token: json.token, expiresAt: json.expiresAt, requestedAt };
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
