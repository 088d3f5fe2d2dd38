/**
 * One OS process of the contended-counter scenario, for any system (forked by contended.mjs). It builds its
 * own client from the spec, warms up, waits for "go", then runs `rounds` critical sections:
 * acquire with wait → read the counter file → (stay `holdMs`) → write counter + 1 → release. It reports its
 * waits, the times its sections ended, and the requests (and re-polls) its client sent.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { makeSystem } from "../systems/index.mjs";

const WAIT_MS = 60_000;
const TTL_MS = 10_000;
const WARMUP = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run({ spec, name, rounds, counterFile, holdMs = 0 }) {
  const system = await makeSystem(spec);
  // Unmeasured sections first, so that the measured ones time the lock, not a cold process: WARMUP on a
  // name of this process's own (a freshly forked Node runs its HTTP client's first few hundred requests
  // unoptimised: at 40 rounds that made P=4 look ~40% slower than at 100; RESULTS.md, "Warm-up"), then one
  // on the shared name, which opens its connection and (for the first process) creates the lock.
  for (let i = 0; i < WARMUP; i++) {
    const own = await system.acquire(`${name}-warm-${process.pid}`, { ttlMs: TTL_MS, waitMs: WAIT_MS });
    if (own !== null) await system.release(own);
  }
  const warm = await system.acquire(name, { ttlMs: TTL_MS, waitMs: WAIT_MS });
  if (warm !== null) await system.release(warm);
  process.send({ type: "ready" });
  await new Promise((resolve) => process.once("message", resolve));
  const waits = [];
  const ends = [];
  // [requested, granted] in epoch ms, comparable across processes, then [reached the lock, token] by the lock.
  const grants = [];
  const epoch = () => performance.timeOrigin + performance.now();
  let timeouts = 0;
  system.stats.requests = 0;
  system.stats.repolls = 0;
  for (let i = 0; i < rounds; i++) {
    const asked = performance.now();
    const askedAt = epoch();
    const lease = await system.acquire(name, { ttlMs: TTL_MS, waitMs: WAIT_MS });
    if (lease === null) {
      timeouts++;
      continue;
    }
    waits.push(performance.now() - asked);
    // In line from when the request left (systems that know it), else from the call's start (pollers).
    grants.push([lease.requestedAt ?? askedAt, epoch(), lease.reachedAt ?? null, lease.token ?? null]);
    const value = Number(readFileSync(counterFile, "utf8"));
    // Between the read and the write: a second holder in this window would lose an update.
    if (holdMs > 0) await sleep(holdMs);
    writeFileSync(counterFile, String(value + 1));
    await system.release(lease);
    ends.push(epoch());
  }
  const { requests, repolls } = system.stats;
  await system.close();
  process.send({ type: "done", waits, ends, grants, timeouts, requests, repolls });
}

process.once("message", (job) => {
  run(job).catch((err) => {
    process.send({ type: "error", message: String(err?.stack ?? err) });
  });
});
