/**
 * The short, seeded chaos run for CI: about 60 s of holders (client library and bare fetch) and short-wait
 * clients that give up, on a mutex, a read-write lock and a semaphore, through dropped responses, client
 * SIGKILLs, stalls past the TTL and server restarts; then every check of chaos/check.ts (safety and
 * liveness) must pass. The checker's own cases: chaos-check.test.ts. Longer hunts: chaos/README.md.
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
});
