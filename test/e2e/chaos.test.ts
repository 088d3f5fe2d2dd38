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
const CHECKER = new URL("../../chaos/check.ts", (import.meta as { url: string }).url).pathname;
const SEED = 20261122;

type Report = { violations: { check: string; detail: string }[] };
type CheckRun = (input: Record<string, unknown[]>) => Report;

/** A proxy-log entry for `op` on lock `name`, answered 200 with `response`. */
function ex(id: number, name: string, op: string, sentAt: number, request: object, response: object) {
  return {
    kind: "exchange",
    id,
    method: "POST",
    path: `/v1/locks/${name}/${op}`,
    sentAt,
    answeredAt: sentAt + 1,
    request,
    status: 200,
    response,
    upstreamError: null,
    dropped: false,
    clientGone: false,
  };
}
const lease = (leaseId: string, token: number, grantedAt: number, ttlMs = 1_000) => ({
  leaseId,
  token,
  ttlMs,
  expiresAt: grantedAt + ttlMs,
});
const none = { storeWrites: [], clientEvents: [], restartChecks: [], endChecks: [] };

describe("chaos checker: catches what it claims to (synthetic logs)", () => {
  const load = async () => ((await import(/* @vite-ignore */ CHECKER)) as { checkRun: CheckRun }).checkRun;

  it("accepts back-to-back leases: expiry, then release", async () => {
    const checkRun = await load();
    const exchanges = [
      ex(1, "a", "acquire", 1_000, { leaseId: "L1" }, lease("L1", 1, 1_000)),
      ex(2, "a", "acquire", 2_000, { leaseId: "L2" }, lease("L2", 2, 2_000)),
      ex(3, "a", "release", 2_500, { leaseId: "L2" }, { released: true, holdCount: 0 }),
      ex(4, "a", "acquire", 2_501, { leaseId: "L3" }, lease("L3", 3, 2_501)),
    ];
    expect(checkRun({ ...none, exchanges }).violations).toEqual([]);
  });

  it("flags two overlapping holders, a double grant and a lease lost by a retry", async () => {
    const checkRun = await load();
    const exchanges = [
      ex(1, "a", "acquire", 1_000, { leaseId: "L1" }, lease("L1", 1, 1_000)),
      ex(2, "a", "renew", 1_500, { leaseId: "L1" }, lease("L1", 1, 1_500)),
      ex(3, "a", "acquire", 2_200, { leaseId: "L2" }, lease("L2", 2, 2_200)),
      ex(4, "a", "acquire", 4_000, { leaseId: "L2" }, lease("L2", 3, 4_000)),
      { ...ex(5, "a", "acquire", 4_100, { leaseId: "L2" }, { code: "lock_held" }), status: 409 },
    ];
    const checks = checkRun({ ...none, exchanges }).violations.map((v) => v.check);
    expect(checks).toContain("mutual-exclusion");
    expect(checks).toContain("no-double-grant");
    expect(checks).toContain("retry-keeps-lease");
  });

  it("flags a live holder fenced out, and tokens lost by a restart", async () => {
    const checkRun = await load();
    const report = checkRun({
      ...none,
      exchanges: [],
      clientEvents: [
        {
          ev: "write",
          at: 1_100,
          client: "c",
          name: "a",
          token: 1,
          late: false,
          heldUntil: 2_000,
          storeAt: 1_100,
          accepted: false,
          highest: 2,
        },
      ],
      restartChecks: [{ at: 5_000, name: "a", lastTokenAfter: 3, maxTokenBefore: 4 }],
    });
    expect(report.violations.map((v) => v.check).sort()).toEqual([
      "no-double-holder",
      "tokens-survive-restart",
    ]);
  });
});

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
