/**
 * The lock contract (test/contract/lock-contract.ts) against the pure state machine, driven as the lock
 * object drives it: one transition per call at a clock the test owns, waits parked until a later step
 * grants or cancels them, and ended lease ids kept as storage keeps them.
 */
import type { AcquireRequest, Lease } from "../client/src/protocol.ts";
import { describeLockContract, type LockSubject, type Result } from "../test/contract/lock-contract.ts";
import { MemoryHistory, T0 } from "./lock-state.fixtures.ts";
import {
  type Command,
  EMPTY_STATE,
  grantView,
  type LockState,
  type Outcome,
  type Step,
  transition,
} from "./lock-state.ts";

interface Lock {
  state: LockState;
  readonly history: MemoryHistory;
  readonly parked: Map<string, (r: Result<Lease>) => void>;
}

function machineSubject(): LockSubject {
  const locks = new Map<string, Lock>();
  let now = T0;
  const lockOf = (name: string): Lock => {
    let lock = locks.get(name);
    if (lock === undefined) {
      lock = { state: EMPTY_STATE, history: new MemoryHistory(), parked: new Map() };
      locks.set(name, lock);
    }
    return lock;
  };
  let ids = 0;
  const apply = (name: string, command: Command): Outcome => {
    const lock = lockOf(name);
    now += 1;
    const step: Step = transition(lock.state, command, now, lock.history);
    lock.history.record(step);
    lock.state = step.state;
    for (const lease of step.effects.granted) {
      const view = grantView({ kind: "granted", lease, holdId: lease.leaseId, limit: step.state.limit }, now);
      lock.parked.get(lease.leaseId)?.({ ok: true, value: { name, ...view } });
      lock.parked.delete(lease.leaseId);
    }
    for (const leaseId of step.effects.cancelled) {
      lock.parked.get(leaseId)?.({ ok: false, code: "wait_cancelled" });
      lock.parked.delete(leaseId);
    }
    return step.outcome;
  };
  const answer = <T>(outcome: Outcome, ok: (o: Outcome) => T): Result<T> =>
    outcome.kind === "rejected" ? { ok: false, code: outcome.code } : { ok: true, value: ok(outcome) };
  const lease =
    (name: string) =>
    (o: Outcome): Lease => {
      if (o.kind !== "granted") throw new Error(`not a grant: ${o.kind}`);
      return { name, ...grantView(o, now) };
    };
  return {
    async acquire(name, r: AcquireRequest) {
      const leaseId = r.leaseId ?? `machine-lease-${++ids}-0000`;
      const outcome = apply(name, {
        type: "acquire",
        leaseId,
        owner: r.owner ?? null,
        principal: "contract",
        ttlMs: r.ttlMs,
        waitMs: r.waitMs ?? 0,
        mode: r.mode ?? "exclusive",
        limit: r.limit ?? null,
        permits: r.permits ?? 1,
        holderKey: r.reentrant === true ? (r.holderKey ?? null) : null,
        session: null,
        repoll: r.repoll ?? false,
        lockDelayMs: r.lockDelayMs ?? 0,
      });
      if (outcome.kind === "queued") {
        return new Promise((resolve) => lockOf(name).parked.set(leaseId, resolve));
      }
      return answer(outcome, lease(name));
    },
    async renew(name, leaseId, change = {}) {
      const { ttlMs = null, mode = null } = change;
      return answer(apply(name, { type: "renew", leaseId, ttlMs, mode }), lease(name));
    },
    async release(name, leaseId) {
      return answer(apply(name, { type: "release", leaseId }), (o) => {
        if (o.kind === "cancelled") return { released: false, cancelled: true as const };
        if (o.kind !== "released") throw new Error(`not a release: ${o.kind}`);
        return o.holdCount === null ? { released: true } : { released: true, holdCount: o.holdCount };
      });
    },
    async expire(name) {
      now = Math.max(now, ...lockOf(name).state.holders.map((l) => l.expiresAt));
      apply(name, { type: "tick" });
    },
    async untilWaiters(name, n) {
      const waiting = lockOf(name).state.queue.filter((w) => now <= w.reserveUntil).length;
      if (waiting !== n) throw new Error(`${waiting} waiters, expected ${n}`);
    },
  };
}

describeLockContract("the pure state machine", machineSubject);
