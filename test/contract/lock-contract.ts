/**
 * The lock contract, written once (async-mutex's `mutexSuite(factory)`): what any way of using a lock must
 * observe, for mutexes, semaphores, read-write locks, reentrant holds, lock-delays and expiry. It runs
 * against the pure state machine (durable-objects/lock-state.contract.test.ts), the Worker over HTTP
 * (test/lock-contract.test.ts) and the client library (test/client/client-contract.test.ts), so a rule is
 * stated here and not again in each layer's tests. Layer-specific behaviour stays in those layers' files.
 */
import { describe, expect, it } from "vitest";
import type { AcquireRequest, Lease, ReleaseResponse } from "../../client/src/protocol.ts";

/** A call's result: the answer, or the problem code it was refused with. */
export type Result<T> = { ok: true; value: T } | { ok: false; code: string };

/** One way of using locks, as the contract drives it. Names are fresh per test. */
export interface LockSubject {
  /** Acquires; with `waitMs` it settles when granted or refused, like one request (or one client call). */
  acquire(name: string, request: AcquireRequest): Promise<Result<Lease>>;
  renew(name: string, leaseId: string, change?: { ttlMs?: number; mode?: "shared" }): Promise<Result<Lease>>;
  release(name: string, leaseId: string): Promise<Result<ReleaseResponse>>;
  /** Ends every lease of `name` as if its TTL ran out now, and lets the lock act on it. */
  expire(name: string): Promise<void>;
  /** Resolves once `n` requests wait for `name`, so that arrival order is known. */
  untilWaiters(name: string, n: number): Promise<void>;
}

export function describeLockContract(label: string, subject: () => LockSubject): void {
  let counter = 0;
  const fresh = (tag: string) => `contract-${tag}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

  /** The granted lease, or a test failure naming the refusal. */
  const granted = async (p: Promise<Result<Lease>>): Promise<Lease> => {
    const r = await p;
    if (!r.ok) throw new Error(`expected a grant, got ${r.code}`);
    return r.value;
  };
  const refused = async (p: Promise<Result<unknown>>): Promise<string> => {
    const r = await p;
    if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.value)}`);
    return r.code;
  };

  describe(`lock contract: ${label}`, () => {
    describe("mutex", () => {
      it("grants a free lock and refuses a second holder with lock_held", async () => {
        const s = subject();
        const name = fresh("mutex");
        const a = await granted(s.acquire(name, { ttlMs: 10_000 }));
        expect(a.token).toBe(1);
        expect(await refused(s.acquire(name, { ttlMs: 10_000 }))).toBe("lock_held");
      });

      it("issues a larger token to every grant, across release and expiry", async () => {
        const s = subject();
        const name = fresh("tokens");
        const a = await granted(s.acquire(name, { ttlMs: 10_000 }));
        await s.release(name, a.leaseId);
        await granted(s.acquire(name, { ttlMs: 10_000 }));
        await s.expire(name);
        const c = await granted(s.acquire(name, { ttlMs: 10_000 }));
        expect(c.token).toBe(3);
      });

      it("answers a retried acquire with the same lease, never a second grant", async () => {
        const s = subject();
        const name = fresh("retry");
        const leaseId = `retry-lease-${counter}-abcdef`;
        const a = await granted(s.acquire(name, { ttlMs: 10_000, leaseId }));
        const b = await granted(s.acquire(name, { ttlMs: 10_000, leaseId }));
        expect(b).toMatchObject({ leaseId, token: a.token, holdCount: 1 });
      });

      it("grants waiters in arrival order as the holder releases", async () => {
        const s = subject();
        const name = fresh("fifo");
        const holder = await granted(s.acquire(name, { ttlMs: 10_000 }));
        const waits: Promise<Lease>[] = [];
        for (let i = 0; i < 3; i++) {
          waits.push(granted(s.acquire(name, { ttlMs: 10_000, waitMs: 10_000, owner: `w${i}` })));
          await s.untilWaiters(name, i + 1);
        }
        await s.release(name, holder.leaseId);
        const tokens: number[] = [];
        for (const w of waits) {
          const lease = await w;
          tokens.push(lease.token);
          await s.release(name, lease.leaseId);
        }
        expect(tokens).toEqual([2, 3, 4]);
      });

      it("renews only a lease that is held, and says why another is not", async () => {
        const s = subject();
        const name = fresh("renew");
        const a = await granted(s.acquire(name, { ttlMs: 1_000 }));
        expect(await granted(s.renew(name, a.leaseId, { ttlMs: 30_000 }))).toMatchObject({
          token: 1,
          ttlMs: 30_000,
        });
        await s.release(name, a.leaseId);
        expect(await refused(s.renew(name, a.leaseId))).toBe("not_held");
      });

      it("frees the lock when its lease expires", async () => {
        const s = subject();
        const name = fresh("expiry");
        const a = await granted(s.acquire(name, { ttlMs: 60_000 }));
        await s.expire(name);
        expect(await refused(s.release(name, a.leaseId))).toBe("not_held");
        expect((await granted(s.acquire(name, { ttlMs: 1_000 }))).token).toBe(2);
      });
    });

    describe("counting semaphore", () => {
      it("admits holders up to its limit in permits, and refuses another limit while in use", async () => {
        const s = subject();
        const name = fresh("sem");
        await granted(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 2 }));
        await granted(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 1 }));
        expect(await refused(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 1 }))).toBe("lock_held");
        expect(await refused(s.acquire(name, { ttlMs: 10_000, limit: 5 }))).toBe("limit_mismatch");
      });

      it("does not starve a large request behind later small ones", async () => {
        const s = subject();
        const name = fresh("sem-fifo");
        const first = await granted(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 2 }));
        const big = granted(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 3, waitMs: 10_000 }));
        await s.untilWaiters(name, 1);
        // One permit is free and would fit, but the big request came first.
        expect(await refused(s.acquire(name, { ttlMs: 10_000, limit: 3, permits: 1 }))).toBe("waiters_ahead");
        await s.release(name, first.leaseId);
        expect(await big).toMatchObject({ permits: 3, token: 2 });
      });
    });

    describe("read-write lock", () => {
      it("lets readers share and keeps a writer out", async () => {
        const s = subject();
        const name = fresh("rw");
        const r1 = await granted(s.acquire(name, { ttlMs: 10_000, mode: "shared" }));
        const r2 = await granted(s.acquire(name, { ttlMs: 10_000, mode: "shared" }));
        expect(await refused(s.acquire(name, { ttlMs: 10_000 }))).toBe("lock_held");
        await s.release(name, r1.leaseId);
        await s.release(name, r2.leaseId);
        expect(await granted(s.acquire(name, { ttlMs: 10_000 }))).toMatchObject({ mode: "exclusive" });
      });

      it("queues readers that arrive behind a waiting writer, so the writer is not starved", async () => {
        const s = subject();
        const name = fresh("rw-writer");
        const r1 = await granted(s.acquire(name, { ttlMs: 10_000, mode: "shared" }));
        const writer = granted(s.acquire(name, { ttlMs: 10_000, waitMs: 10_000 }));
        await s.untilWaiters(name, 1);
        expect(await refused(s.acquire(name, { ttlMs: 10_000, mode: "shared" }))).toBe("waiters_ahead");
        await s.release(name, r1.leaseId);
        expect(await writer).toMatchObject({ mode: "exclusive", token: 2 });
      });

      it("downgrades a writer to a reader without releasing, admitting waiting readers", async () => {
        const s = subject();
        const name = fresh("rw-down");
        const w = await granted(s.acquire(name, { ttlMs: 10_000 }));
        const reader = granted(s.acquire(name, { ttlMs: 10_000, waitMs: 10_000, mode: "shared" }));
        await s.untilWaiters(name, 1);
        expect(await granted(s.renew(name, w.leaseId, { mode: "shared" }))).toMatchObject({
          mode: "shared",
          token: 1,
        });
        expect(await reader).toMatchObject({ mode: "shared", token: 2 });
      });
    });

    describe("reentrant holds", () => {
      const holderKey = "contract-holder-0001";

      it("re-enters for the same holder under one token, each hold released by its own leaseId", async () => {
        const s = subject();
        const name = fresh("re");
        const outer = await granted(s.acquire(name, { ttlMs: 10_000, reentrant: true, holderKey }));
        const inner = await granted(s.acquire(name, { ttlMs: 10_000, reentrant: true, holderKey }));
        expect(inner).toMatchObject({ token: outer.token, holdCount: 2 });
        expect(inner.leaseId).not.toBe(outer.leaseId);
        const other = { ttlMs: 10_000, reentrant: true, holderKey: "contract-holder-0002" };
        expect(await refused(s.acquire(name, other))).toBe("lock_held");
        expect(await s.release(name, outer.leaseId)).toEqual({
          ok: true,
          value: { released: true, holdCount: 1 },
        });
        expect(await refused(s.acquire(name, other))).toBe("lock_held");
        expect(await s.release(name, inner.leaseId)).toEqual({
          ok: true,
          value: { released: true, holdCount: 0 },
        });
        expect((await granted(s.acquire(name, other))).token).toBe(2);
      });
    });

    describe("lock-delay", () => {
      it("keeps the lock closed after a lost holder's expiry, but not after a release", async () => {
        const s = subject();
        const name = fresh("delay");
        await granted(s.acquire(name, { ttlMs: 60_000, lockDelayMs: 60_000 }));
        await s.expire(name);
        expect(await refused(s.acquire(name, { ttlMs: 1_000 }))).toBe("lock_delay");
        const other = fresh("delay-release");
        const a = await granted(s.acquire(other, { ttlMs: 60_000, lockDelayMs: 60_000 }));
        await s.release(other, a.leaseId);
        expect((await granted(s.acquire(other, { ttlMs: 1_000 }))).token).toBe(2);
      });
    });
  });
}
