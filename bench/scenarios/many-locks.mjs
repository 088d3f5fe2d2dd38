/**
 * Scenario 5, many locks: acquire + release on each of `manyLocks` distinct names, `manyInFlight` pairs
 * at a time from one client. Pairs per second, requests per second, and the server's memory afterwards.
 */
import { randomBytes } from "node:crypto";
import { round2 } from "../stats.mjs";
import { makeSystem } from "../systems/index.mjs";

export async function manyLocks(spec, { manyLocks: count, manyInFlight }, memory) {
  const system = await makeSystem(spec);
  const prefix = `many-${randomBytes(4).toString("hex")}`;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const name = `${prefix}-${next++}`;
      const lease = await system.acquire(name, { ttlMs: 30_000 });
      if (lease === null) throw new Error(`${system.label}: fresh lock ${name} refused`);
      await system.release(lease);
    }
  };
  try {
    const before = memory();
    const started = performance.now();
    await Promise.all(Array.from({ length: manyInFlight }, worker));
    const seconds = (performance.now() - started) / 1000;
    return {
      locks: count,
      pairsPerSec: round2(count / seconds),
      requestsPerSec: round2(system.stats.requests / seconds),
      rssBeforeMiB: before,
      rssAfterMiB: memory(),
    };
  } finally {
    await system.close();
  }
}
