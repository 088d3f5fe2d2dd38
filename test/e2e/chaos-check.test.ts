/**
 * The chaos checker (chaos/check.ts) on synthetic logs: each check must flag the fault it claims to catch,
 * and must stay quiet on what a correct server does. No server runs here; chaos.test.ts is the live run.
 */
import { describe, expect, it } from "vitest";
import { type CheckInput, checkRun } from "../../chaos/check.ts";
import type { StoreAccess } from "../../chaos/fenced-store.ts";
import type { Exchange } from "../../chaos/proxy.ts";

let nextId = 1;

/** A proxy-log entry: `op` on lock `name`, sent at `sentAt`, answered (by default 200, 1 ms later). */
function ex(
  op: "acquire" | "renew" | "release",
  name: string,
  sentAt: number,
  request: object,
  response: object | null,
  o: { answeredAt?: number; status?: number | null; upstreamError?: string } = {},
): Exchange {
  return {
    kind: "exchange",
    id: nextId++,
    method: "POST",
    path: `/v1/locks/${name}/${op}`,
    sentAt,
    answeredAt: o.answeredAt ?? sentAt + 1,
    request,
    status: o.status === undefined ? 200 : o.status,
    response,
    upstreamError: o.upstreamError ?? null,
    dropped: false,
    clientGone: false,
  };
}

interface GrantOptions {
  ttlMs?: number;
  /** When the request reached the server, if it waited before `grantedAt`. */
  arrivedAt?: number;
  mode?: "exclusive" | "shared";
  permits?: number;
  limit?: number;
}

/** A lease answer for a grant at `grantedAt`. */
function lease(leaseId: string, token: number, grantedAt: number, o: GrantOptions = {}) {
  const ttlMs = o.ttlMs ?? 1_000;
  const expiresAt = grantedAt + ttlMs;
  return {
    leaseId,
    token,
    ttlMs,
    expiresAt,
    validForMs: expiresAt - (o.arrivedAt ?? grantedAt),
    mode: o.mode ?? "exclusive",
    permits: o.permits ?? 1,
    holdCount: 1,
    limit: o.limit ?? 1,
  };
}

/** An acquire granted at once at `at`. */
function acquired(name: string, leaseId: string, token: number, at: number, o: GrantOptions = {}) {
  const { mode, permits, limit } = o;
  return ex(
    "acquire",
    name,
    at,
    { leaseId, ttlMs: o.ttlMs ?? 1_000, mode, permits, limit },
    lease(leaseId, token, at, o),
  );
}

const released = (name: string, leaseId: string, sentAt: number) =>
  ex("release", name, sentAt, { leaseId }, { released: true, holdCount: 0 }, { answeredAt: sentAt + 5 });

function check(exchanges: Exchange[], more: Partial<CheckInput> = {}) {
  return checkRun({
    exchanges,
    storeAccesses: [],
    clientEvents: [],
    restartChecks: [],
    endChecks: [],
    ...more,
  });
}
const checks = (exchanges: Exchange[], more: Partial<CheckInput> = {}) =>
  check(exchanges, more).violations.map((v) => v.check);

describe("chaos checker, safety: catches what it claims to (synthetic logs)", () => {
  it("accepts back-to-back leases: expiry, then release", () => {
    const exchanges = [
      acquired("a", "L1", 1, 1_000),
      acquired("a", "L2", 2, 2_000),
      released("a", "L2", 2_500),
      acquired("a", "L3", 3, 2_501),
    ];
    expect(check(exchanges).violations).toEqual([]);
  });

  it("flags two overlapping holders, a double grant and a lease lost by a retry", () => {
    const exchanges = [
      acquired("a", "L1", 1, 1_000),
      ex("renew", "a", 1_500, { leaseId: "L1" }, lease("L1", 1, 1_500)),
      acquired("a", "L2", 2, 2_200),
      acquired("a", "L2", 3, 4_000),
      ex("acquire", "a", 4_100, { leaseId: "L2" }, { code: "lock_held", holderCount: 1 }, { status: 409 }),
    ];
    const found = checks(exchanges);
    expect(found).toContain("mutual-exclusion");
    expect(found).toContain("no-double-grant");
    expect(found).toContain("retry-keeps-lease");
  });

  it("lets readers share a read-write lock, and flags a writer beside a reader", () => {
    const readers = [
      acquired("rw", "R1", 1, 1_000, { mode: "shared" }),
      acquired("rw", "R2", 2, 1_100, { mode: "shared" }),
    ];
    expect(checks(readers)).toEqual([]);
    expect(checks([...readers, acquired("rw", "W3", 3, 1_500)])).toEqual(["mutual-exclusion"]);
  });

  it("lets a semaphore's permits add up to its limit, and flags one more", () => {
    const sem = { limit: 3 };
    const within = [
      acquired("s", "P1", 1, 1_000, { ...sem, permits: 2 }),
      acquired("s", "P2", 2, 1_100, { ...sem, permits: 1 }),
    ];
    expect(checks(within)).toEqual([]);
    expect(checks([...within, acquired("s", "P3", 3, 1_200, { ...sem, permits: 1 })])).toEqual([
      "permits-within-limit",
    ]);
    // Once a holder released, its permits are free again.
    const after = [
      ...within,
      released("s", "P1", 1_300),
      acquired("s", "P3", 3, 1_306, { ...sem, permits: 2 }),
    ];
    expect(checks(after)).toEqual([]);
  });

  it("flags a grant of another mode than asked", () => {
    const shared = ex(
      "acquire",
      "rw",
      1_000,
      { leaseId: "R1", ttlMs: 1_000, mode: "shared" },
      lease("R1", 1, 1_000),
    );
    expect(checks([shared])).toEqual(["grant-matches-request"]);
  });

  it("takes server-chosen leaseIds as new leases, not as retries of one another", () => {
    const exchanges = [
      ex("acquire", "a", 1_000, { ttlMs: 1_000, waitMs: 200 }, lease("S1", 1, 1_000)),
      released("a", "S1", 1_100),
      ex("acquire", "a", 1_200, { ttlMs: 1_000, waitMs: 200 }, lease("S2", 2, 1_200)),
    ];
    expect(check(exchanges).violations).toEqual([]);
  });

  it("flags a live holder fenced out (writer or reader), a fence that let a stale access through, and tokens lost by a restart", () => {
    const access = (op: "write" | "read", token: number, seen: number, written: number) => ({
      ev: "access",
      at: 1_100,
      client: "c",
      op,
      name: "a",
      token,
      late: false,
      heldUntil: 2_000,
      storeAt: 1_100,
      accepted: false,
      seen,
      written,
    });
    const stale: StoreAccess = {
      kind: "store-access",
      op: "read",
      resource: "a",
      token: 3,
      leaseId: "R3",
      client: "c",
      late: true,
      accepted: true,
      seen: 5,
      written: 4,
      at: 1_200,
    };
    const report = check([], {
      clientEvents: [access("write", 1, 2, 0), access("read", 3, 4, 4)],
      storeAccesses: [stale],
      restartChecks: [{ at: 5_000, name: "a", lastTokenAfter: 3, maxTokenBefore: 4 }],
    });
    expect(report.violations.map((v) => v.check).sort()).toEqual([
      "fence",
      "no-double-holder",
      "no-double-holder",
      "tokens-survive-restart",
    ]);
  });
});
