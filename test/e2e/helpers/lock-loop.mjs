// The raw-HTTP lock loop shared by the e2e worker processes: plain JavaScript, so each runs with bare node.
import { randomUUID } from "node:crypto";

export async function post(url, lock, action, body) {
  const res = await fetch(`${url}/v1/locks/${lock}/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Acquires with a wait, re-polling with the same leaseId when a request's wait runs out (which keeps the
 * place in the queue), and returns the lease. Throws on anything but a grant.
 */
export async function acquireWaiting(url, lock, fields) {
  // repoll: this loop always comes back at once when a request's wait runs out, so it keeps its turn.
  const req = { ttlMs: 10_000, waitMs: 25_000, leaseId: randomUUID(), repoll: true, ...fields };
  let r = await post(url, lock, "acquire", req);
  // Busy (held, or earlier waiters queued) and queued: re-poll at once with the same leaseId.
  while (r.status === 409 && r.body.position !== undefined) r = await post(url, lock, "acquire", req);
  if (r.status !== 200) throw new Error(`acquire failed: ${JSON.stringify(r)}`);
  return r.body;
}

export async function release(url, lock, leaseId) {
  const r = await post(url, lock, "release", { leaseId });
  if (r.status !== 200) throw new Error(`release failed: ${JSON.stringify(r)}`);
}
