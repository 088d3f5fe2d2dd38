/**
 * Scenarios 3 and 4, hand-off and lease expiry, each with a holder and a waiter on separate clients.
 * Hand-off: the holder releases while the waiter is blocked (or polling); we time from the release call
 * to the waiter's grant. Expiry: the holder never releases; we time how late after the lease's expiry
 * (the server's expiresAt for edgelock, request time + TTL for the peers) the waiter gets the lock.
 */
import { randomBytes } from "node:crypto";
import { sleep } from "../servers/proc.mjs";
import { round2, summarize } from "../stats.mjs";
import { makeSystem } from "../systems/index.mjs";

const WAIT_MS = 10_000;

/**
 * The pause before each release: it lets the waiter park (or start polling), and its randomness puts the
 * release at a random poll phase. The floor measures one write + setAlarm after the same pause, because a
 * request sent after idling costs more on this machine than one sent back to back (CPU wake-up).
 */
export const handoffPause = () => sleep(30 + Math.random() * 50);

async function pairOfClients(spec) {
  const holder = await makeSystem(spec);
  const waiter = await makeSystem(spec);
  return { holder, waiter, close: () => Promise.all([holder.close(), waiter.close()]) };
}

export async function handoff(spec, { handoffs }) {
  const { holder, waiter, close } = await pairOfClients(spec);
  const name = `handoff-${randomBytes(4).toString("hex")}`;
  const latencies = [];
  let waiterRequests = 0;
  try {
    for (let i = 0; i < handoffs; i++) {
      const held = await holder.acquire(name, { ttlMs: WAIT_MS });
      const before = waiter.stats.requests;
      let grantedAt = 0;
      const waiting = waiter.acquire(name, { ttlMs: WAIT_MS, waitMs: WAIT_MS }).then((lease) => {
        grantedAt = performance.now();
        return lease;
      });
      await handoffPause();
      const releasedAt = performance.now();
      await holder.release(held);
      const lease = await waiting;
      if (lease === null) throw new Error(`${waiter.label}: waiter not granted after release`);
      latencies.push(grantedAt - releasedAt);
      waiterRequests += waiter.stats.requests - before;
      await waiter.release(lease);
    }
    return {
      handoff: summarize(latencies),
      samples: latencies.map(round2),
      waiterRequests: round2(waiterRequests / handoffs),
    };
  } finally {
    await close();
  }
}

export async function expiry(spec, { expiries, expiryTtlMs }) {
  const { holder, waiter, close } = await pairOfClients(spec);
  const name = `expiry-${randomBytes(4).toString("hex")}`;
  const lateness = [];
  let ttlMs = expiryTtlMs;
  try {
    for (let i = 0; i < expiries; i++) {
      const held = await holder.acquire(name, { ttlMs: expiryTtlMs });
      ttlMs = held.ttlMs ?? expiryTtlMs;
      const lease = await waiter.acquire(name, { ttlMs: WAIT_MS, waitMs: WAIT_MS });
      const grantedAt = Date.now();
      if (lease === null) throw new Error(`${waiter.label}: waiter not granted after expiry`);
      lateness.push(grantedAt - held.expiresAt);
      await waiter.release(lease);
    }
    return { ttlMs, lateness: summarize(lateness) };
  } finally {
    await close();
  }
}
