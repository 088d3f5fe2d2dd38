/**
 * The short, seeded chaos run for CI: about 60 s of clients contending through dropped responses, client
 * SIGKILLs, stalls past the TTL and server restarts, then every check of chaos/check.ts must pass. Longer
 * hunts: `npm run chaos -- --minutes 10` (see chaos/README.md).
 */
import { describe, expect, it } from "vitest";

/** The subset of chaos/run.ts this test uses. */
interface ChaosModule {
  DEFAULTS: Record<string, unknown>;
  runChaos(o: Record<string, unknown>): Promise<{
    violations: { check: string; detail: string }[];
    faults: Record<string, number>;
    counts: Record<string, number>;
  }>;
  summarize(r: unknown): string;
}

// The harness is Node code (child_process, net, fs); the repo's tsconfig types only the Workers runtime, so it
// is loaded by path and typed through ChaosModule rather than imported statically into the typecheck.
const HARNESS = new URL("../../chaos/run.ts", (import.meta as { url: string }).url).pathname;
const SEED = 20261122;

describe("chaos: contention under injected faults", () => {
  it("never has two holders, loses or double-grants a lease, or lets a late write through", async () => {
    const chaos = (await import(/* @vite-ignore */ HARNESS)) as ChaosModule;
    const result = await chaos.runChaos({
      ...chaos.DEFAULTS,
      seed: SEED,
      durationMs: 60_000,
      log: (line: string) => console.log(line),
    });
    console.log(chaos.summarize(result));
    expect(result.violations).toEqual([]);
    // The run must actually have exercised every fault, or a green result means nothing.
    expect(result.faults["client kills"]).toBeGreaterThan(0);
    expect(result.faults["server restarts"]).toBeGreaterThan(0);
    expect(result.faults["dropped responses"]).toBeGreaterThan(0);
    expect(result.faults["stalls past TTL"]).toBeGreaterThan(0);
    expect(result.counts["leases granted"]).toBeGreaterThan(20);
  });
});
