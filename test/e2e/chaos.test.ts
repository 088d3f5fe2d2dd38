/**
 * The short, seeded chaos run for CI: about 60 s of holders (client library over HTTP and sessions, bare
 * fetch) and short-wait clients that give up, on a mutex, a read-write lock and a semaphore, through dropped
 * responses, client SIGKILLs, cut session connections, stalls past the TTL and server restarts; then every
 * check of chaos/check.ts (safety and liveness) must pass. The checker's own cases: chaos-check.test.ts.
 * Longer hunts: chaos/README.md.
 */
import { expect, it } from "vitest";
import { DEFAULTS, runChaos, summarize } from "../../chaos/run.ts";

const SEED = 20261122;

it("never has two holders, loses or double-grants a lease, lets a late access through, or idles while someone waits", async () => {
  const result = await runChaos({
    ...DEFAULTS,
    seed: SEED,
    durationMs: 60_000,
    log: (line: string) => console.log(line),
  });
  console.log(summarize(result));
  expect(result.violations).toEqual([]);
  // The run must actually have exercised every fault and every kind of lock, or a green result means nothing.
  expect(result.faults["client kills"]).toBeGreaterThan(0);
  expect(result.faults["server restarts"]).toBeGreaterThan(0);
  expect(result.faults["dropped responses"]).toBeGreaterThan(0);
  expect(result.faults["stalls past TTL"]).toBeGreaterThan(0);
  for (const kind of ["mutex", "rwlock", "semaphore"] as const) {
    expect(result.counts[`leases granted (${kind})`]).toBeGreaterThan(20);
    expect(result.liveness.byKind[kind]?.waits).toBeGreaterThan(20);
  }
  expect(result.counts["reads in lease"]).toBeGreaterThan(0);
  // Sessions held leases, and some were cut or killed while they did.
  expect(result.faults["session cuts (reset)"]).toBeGreaterThan(0);
  expect(result.counts["grants received by session clients"]).toBeGreaterThan(20);
  const held = Object.values(result.freedOnDisconnect).reduce((n, d) => n + d.held, 0);
  expect(held).toBeGreaterThan(0);
});
