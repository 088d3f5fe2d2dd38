/**
 * node-redlock v5 on one Redis instance, as its README sets it up. It retries a held lock every
 * `retryDelay` ± `retryJitter` ms; `retryCount` is sized from `waitMs` so it waits as long as the others.
 * The default is redlock's own (200 ± 100 ms); the tuned variant retries every 50 ± 25 ms.
 */
import Redlock, { ExecutionError } from "redlock";
import { countedRedis } from "./redis.mjs";

export const REDLOCK_DEFAULT = { retryDelay: 200, retryJitter: 100 };

export async function createRedlock({ port, retryDelay, retryJitter, label }) {
  const stats = { requests: 0 };
  const client = await countedRedis(port, stats);
  const redlock = new Redlock([client], { retryDelay, retryJitter, retryCount: 0 });
  // Redlock emits every failed attempt (lock held) as an "error" event; an unheard one would crash.
  redlock.on("error", () => {});
  return {
    label: label ?? `redlock ${retryDelay} ms`,
    stats,
    async acquire(name, { ttlMs, waitMs = 0 }) {
      const retryCount = Math.ceil(waitMs / retryDelay);
      const expiresAt = Date.now() + ttlMs;
      try {
        const lock = await redlock.acquire([name], ttlMs, { retryCount });
        return { name, lock, expiresAt };
      } catch (err) {
        if (err instanceof ExecutionError) return null;
        throw err;
      }
    },
    async release(lease) {
      await lease.lock.release();
    },
    async close() {
      client.disconnect();
    },
  };
}
