/**
 * Scenario 1, uncontended: one client, acquire + release on one lock, back to back. Latency per pair,
 * pairs per second and requests per pair. A short warm-up (connections, object creation) is not counted.
 */
import { randomBytes } from "node:crypto";
import { round2, summarize } from "../stats.mjs";
import { makeSystem } from "../systems/index.mjs";

/**
 * Unmeasured pairs first. 20 were too few: the first few hundred requests of a fresh server run its code
 * unoptimised, which put ~0.5 ms on edgelock's pair p50 in a run that started with this scenario.
 */
const WARMUP = 200;

export async function uncontended(spec, { uncontendedPairs: pairs }) {
  const system = await makeSystem(spec);
  const name = `uncontended-${randomBytes(4).toString("hex")}`;
  try {
    const pair = async () => {
      const lease = await system.acquire(name, { ttlMs: 10_000 });
      if (lease === null) throw new Error(`${system.label}: uncontended acquire refused`);
      await system.release(lease);
    };
    for (let i = 0; i < WARMUP; i++) await pair();
    system.stats.requests = 0;
    const latencies = [];
    const started = performance.now();
    for (let i = 0; i < pairs; i++) {
      const t = performance.now();
      await pair();
      latencies.push(performance.now() - t);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      pair: summarize(latencies),
      pairsPerSec: round2(pairs / seconds),
      requestsPerPair: round2(system.stats.requests / pairs),
    };
  } finally {
    await system.close();
  }
}
