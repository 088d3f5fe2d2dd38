/** White-box helpers for runtime tests: time travel through the stored rows, and waiting for queue state. */

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { acquire, inspect, type Reply, tick } from "./api.ts";

export const stubOf = (name: string) => env.LOCK.getByName(name);

/**
 * Ends every lease of the lock as if its TTL ran out a moment ago, and fires the alarm by hand. The object
 * keeps its state in memory, so it is restarted to read the edited rows.
 */
export async function expireAllByAlarm(name: string): Promise<void> {
  const past = Date.now() - 1;
  await runInDurableObject(stubOf(name), (_o, state) => {
    state.storage.sql.exec("UPDATE lease SET expires_at = ?", past);
  });
  await evictDurableObject(stubOf(name));
  expect(await runDurableObjectAlarm(stubOf(name))).toBe(true);
}

/** Waits until the lock object has `n` waiters queued, so that arrival order is known. */
export async function untilWaiters(name: string, n: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < deadline) {
    seen = (await inspect(name)).body.waiters;
    if (seen === n) return;
    await tick(5);
  }
  throw new Error(`never saw ${n} waiters on ${name} (last: ${seen})`);
}

/**
 * Sends an acquire that waits, and resolves once the lock counts `waiters` waiters (this one the last), so
 * that arrival order is known. `answer` settles when it is granted or refused.
 */
export async function queued(
  name: string,
  body: Record<string, unknown>,
  waiters: number,
): Promise<{ answer: Promise<Reply> }> {
  const answer = acquire(name, body);
  await untilWaiters(name, waiters);
  return { answer };
}
