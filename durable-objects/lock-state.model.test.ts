/**
 * Model-based test of the pure lock state machine: fast-check drives random sequences of acquire, renew,
 * release, force-release, ended waits, clock advances and alarm ticks, from two API keys with shared owner
 * labels and holder keys, against a reference model written independently of the machine. The model predicts
 * every answer and every grant exactly, and the invariants are checked after every step: one holder of an
 * exclusive lock, tokens that only grow, FIFO among waiters that are waiting, reentrancy bound to its holder,
 * bounded answers, and liveness (free capacity never sits idle while a waiting request fits it, and nothing
 * changes by itself before the alarm the machine asks for). Rule-by-rule examples live in lock-state.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type LockMode,
  MAX_HOLD_COUNT,
  MAX_HOLDERS_IN_PROBLEM,
  REPOLL_GRACE_MS,
  REPOLL_RESERVE_MS,
} from "../client/src/protocol.ts";
import { MemoryHistory } from "./lock-state.fixtures.ts";
import {
  type AcquireCommand,
  type Command,
  EMPTY_STATE,
  type LockState,
  nextDeadline,
  type Outcome,
  permitsInUse,
  type Step,
  transition,
} from "./lock-state.ts";

/**
 * Seeded so that a failure in CI reproduces locally. To explore, change SEED (or raise RUNS) here: this file
 * runs inside workerd, which does not see the shell's environment.
 */
const SEED = 20261202;
const RUNS = 2_000;
const T0 = 1_000_000;
const SLOTS = 5;
const ADMIN = "model-admin";
/** Two API keys in the same scope; owner labels and holder keys are shared between them on purpose. */
const KEYS = ["key-a", "key-b"] as const;
const OWNERS = ["shared-owner", "owner-b", null] as const;
/** Holder keys for reentrant acquires; null makes the acquire non-reentrant. */
const HOLDER_KEYS = ["holder-1", "holder-2", null] as const;
/** Sessions an acquire may come over; null is HTTP. */
const SESSIONS = ["session-1", "session-2", null] as const;

type ConfigName = "mutex" | "rwlock" | "semaphore" | "mixed";
type EndReason = "expired" | "released" | "cancelled" | "forced" | "session_closed";

type Op =
  | {
      op: "acquire";
      slot: number;
      fresh: boolean;
      key: number;
      owner: number;
      holder: number;
      shared: boolean;
      permits: number;
      limit: number;
      waitMs: number;
      ttlMs: number;
      repoll: boolean;
      lockDelay: boolean;
      session: number;
    }
  | { op: "sessionClosed"; session: number }
  | { op: "renew"; slot: number; ttlMs: number | null; mode: LockMode | null }
  | { op: "release"; slot: number }
  | { op: "waitEnded"; slot: number }
  | { op: "forceRelease" }
  | { op: "advance"; ms: number }
  /** Jumps to the machine's next deadline (plus `offsetMs`), where off-by-one bugs live. */
  | { op: "toDeadline"; offsetMs: number }
  | { op: "tick" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("acquire" as const),
      slot: fc.nat(SLOTS - 1),
      fresh: fc.boolean(),
      key: fc.nat(KEYS.length - 1),
      owner: fc.nat(OWNERS.length - 1),
      holder: fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, fc.nat(1)),
      shared: fc.boolean(),
      permits: fc.integer({ min: 1, max: 3 }),
      limit: fc.constantFrom(8, 8, 8, 3),
      waitMs: fc.constantFrom(0, 0, 150, 600, 2_000),
      ttlMs: fc.constantFrom(100, 250, 800, 5_000),
      repoll: fc.boolean(),
      lockDelay: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, fc.constant(true)),
      session: fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, fc.nat(1)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("sessionClosed" as const), session: fc.nat(1) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("renew" as const),
      slot: fc.nat(SLOTS - 1),
      ttlMs: fc.constantFrom(null, 100, 800),
      mode: fc.constantFrom(null, null, "shared" as const, "exclusive" as const),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("release" as const), slot: fc.nat(SLOTS - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("waitEnded" as const), slot: fc.nat(SLOTS - 1) }) },
  { weight: 1, arbitrary: fc.constant({ op: "forceRelease" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 300, max: 3_500 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("toDeadline" as const), offsetMs: fc.constantFrom(-1, 0, 0, 1) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "tick" as const }) },
);

interface ModelLease {
  readonly leaseId: string;
  readonly token: number;
  readonly principal: string;
  readonly holderKey: string | null;
  readonly session: string | null;
  readonly lockDelayMs: number;
  readonly permits: number;
  mode: LockMode;
  ttlMs: number;
  expiresAt: number;
  /** The leaseIds of its holds, in the order they were taken. */
  holds: string[];
}

interface ModelWaiter {
  readonly leaseId: string;
  readonly principal: string;
  readonly holderKey: string | null;
  readonly session: string | null;
  readonly mode: LockMode;
  readonly permits: number;
  readonly lockDelayMs: number;
  ttlMs: number;
  waitUntil: number;
  reserveUntil: number;
  holdUntil: number;
}

interface Ended {
  readonly reason: EndReason;
  readonly by: string | null;
}

/** The reference model: the rules written again, plainly, to predict what the machine must answer. */
class Model {
  holders: ModelLease[] = [];
  queue: ModelWaiter[] = [];
  readonly ended = new Map<string, Ended>();
  /** Lease ids that ended in the current step, as the machine must report them. */
  endedNow: string[] = [];
  /** Leases granted from the queue in the current step, in grant order. */
  grantedNow: ModelLease[] = [];
  /** Leases that ended in the current step other than by release, with why. */
  lostNow: string[] = [];
  readonly tokens = new Map<number, string>();
  lastToken = 0;
  delayUntil = 0;
  limit = 1;

  begin(now: number, cmd: Command): void {
    this.endedNow = [];
    this.grantedNow = [];
    this.lostNow = [];
    for (const l of this.holders.filter((h) => h.expiresAt <= now)) this.end(l, "expired", now);
    this.queue = this.queue.filter((w) => w.holdUntil > now);
    if (this.delayUntil <= now) this.delayUntil = 0;
    if (cmd.type === "waitEnded") {
      // Answered now: a waiter that promised a re-poll keeps its turn for the reserve from this answer.
      const w = this.queue.find((q) => q.leaseId === cmd.leaseId);
      if (w !== undefined && now > w.waitUntil && w.reserveUntil > w.waitUntil) {
        w.reserveUntil = Math.max(w.reserveUntil, now + REPOLL_RESERVE_MS);
        w.holdUntil = Math.max(w.holdUntil, now + REPOLL_GRACE_MS);
      }
    }
    this.grantPass(now);
  }

  end(l: ModelLease, reason: EndReason, now: number, by: string | null = null): void {
    this.holders = this.holders.filter((h) => h !== l);
    for (const id of l.holds) this.markEnded(id, reason, by);
    if (reason !== "released") this.lostNow.push(`${l.leaseId}:${reason}`);
    if (reason !== "released" && l.lockDelayMs > 0) {
      const from = reason === "expired" ? l.expiresAt : now;
      this.delayUntil = Math.max(this.delayUntil, from + l.lockDelayMs);
    }
    if (this.delayUntil <= now) this.delayUntil = 0;
  }

  markEnded(id: string, reason: EndReason, by: string | null = null): void {
    this.ended.set(id, { reason, by });
    this.endedNow.push(id);
  }

  holderOf(id: string): ModelLease | undefined {
    return this.holders.find((l) => l.holds.includes(id));
  }

  blocking(w: ModelWaiter, now: number): boolean {
    return now <= w.reserveUntil;
  }

  fits(req: { mode: LockMode; permits: number }): boolean {
    if (this.limit > 1) return this.holders.reduce((n, l) => n + l.permits, 0) + req.permits <= this.limit;
    if (this.holders.length === 0) return true;
    return req.mode === "shared" && this.holders.every((l) => l.mode === "shared");
  }

  open(now: number): boolean {
    return now >= this.delayUntil;
  }

  grantPass(now: number): void {
    for (const w of [...this.queue]) {
      if (!this.blocking(w, now)) continue;
      if (now > w.waitUntil || !this.open(now) || !this.fits(w)) return;
      this.queue = this.queue.filter((q) => q !== w);
      this.grantedNow.push(this.addLease(w, now));
    }
  }

  addLease(req: Omit<ModelWaiter, "waitUntil" | "reserveUntil" | "holdUntil">, now: number): ModelLease {
    this.lastToken += 1;
    const lease: ModelLease = {
      leaseId: req.leaseId,
      token: this.lastToken,
      principal: req.principal,
      holderKey: req.holderKey,
      session: req.session,
      lockDelayMs: req.lockDelayMs,
      permits: req.permits,
      mode: req.mode,
      ttlMs: req.ttlMs,
      expiresAt: now + req.ttlMs,
      holds: [req.leaseId],
    };
    this.holders.push(lease);
    this.tokens.set(lease.token, lease.leaseId);
    return lease;
  }

  times(cmd: AcquireCommand, now: number): Pick<ModelWaiter, "waitUntil" | "reserveUntil" | "holdUntil"> {
    const waitUntil = now + cmd.waitMs;
    return {
      waitUntil,
      reserveUntil: waitUntil + (cmd.repoll ? REPOLL_RESERVE_MS : 0),
      holdUntil: waitUntil + REPOLL_GRACE_MS,
    };
  }

  /** The answer to a request that is not granted now: what blocks it, said precisely. */
  busy(req: { mode: LockMode; permits: number }, now: number, queuedId: string | null): Expected {
    const index = queuedId === null ? -1 : this.queue.findIndex((w) => w.leaseId === queuedId);
    const ahead = (index === -1 ? this.queue : this.queue.slice(0, index)).filter((w) =>
      this.blocking(w, now),
    );
    const code = !this.open(now) ? "lock_delay" : !this.fits(req) ? "lock_held" : "waiters_ahead";
    return {
      kind: "rejected",
      code,
      position: index === -1 ? null : ahead.length + 1,
      leaseId: index === -1 ? null : queuedId,
      holderCount: this.holders.length,
      holders: [...this.holders]
        .sort((a, b) => a.token - b.token)
        .slice(0, MAX_HOLDERS_IN_PROBLEM)
        .map((l) => l.token),
    };
  }

  notHeld(id: string): Expected {
    if (this.queue.some((w) => w.leaseId === id))
      return { kind: "rejected", code: "not_held", reason: "queued" };
    const ended = this.ended.get(id);
    return { kind: "rejected", code: "not_held", reason: ended?.reason ?? "unknown", by: ended?.by ?? null };
  }

  /** The outcome of an acquire whose leaseId holds or waits, after the step's grants. */
  settle(cmd: AcquireCommand, now: number): Expected {
    const mine = this.grantedNow.findIndex((l) => l.leaseId === cmd.leaseId);
    if (mine !== -1) this.grantedNow.splice(mine, 1);
    const held = this.holderOf(cmd.leaseId);
    if (held !== undefined) return granted(held, cmd.leaseId);
    const w = this.queue.find((q) => q.leaseId === cmd.leaseId) as ModelWaiter;
    if (cmd.waitMs === 0) return this.busy(w, now, cmd.leaseId);
    return { kind: "queued", leaseId: cmd.leaseId };
  }

  acquire(cmd: AcquireCommand, now: number): Expected {
    if (this.holderOf(cmd.leaseId) !== undefined) return this.settle(cmd, now);
    const queued = this.queue.find((w) => w.leaseId === cmd.leaseId);
    if (queued !== undefined) {
      Object.assign(queued, this.times(cmd, now), { ttlMs: cmd.ttlMs });
      this.grantPass(now);
      return this.settle(cmd, now);
    }
    const ended = this.ended.get(cmd.leaseId);
    if (ended !== undefined) return { kind: "rejected", code: "lease_ended", reason: ended.reason };
    const stated = cmd.limit ?? 1;
    const idle = this.holders.length === 0 && !this.queue.some((w) => this.blocking(w, now));
    if (!idle && stated !== this.limit)
      return { kind: "rejected", code: "limit_mismatch", limit: this.limit };
    if (idle && stated !== this.limit) {
      this.limit = stated;
      this.queue = [];
    }
    if (cmd.holderKey !== null) {
      // Reentrancy is the holder's: the same API key and the same secret, never the owner label.
      const own = this.holders.find((l) => l.holderKey === cmd.holderKey && l.principal === cmd.principal);
      if (own !== undefined) {
        if (own.mode !== cmd.mode || own.permits !== cmd.permits) {
          return { kind: "rejected", code: "reentrant_mismatch", mode: own.mode, permits: own.permits };
        }
        if (own.holds.length >= MAX_HOLD_COUNT) return { kind: "rejected", code: "too_many_holds" };
        own.holds.push(cmd.leaseId);
        own.ttlMs = cmd.ttlMs;
        own.expiresAt = Math.max(own.expiresAt, now + cmd.ttlMs);
        return granted(own, cmd.leaseId);
      }
    }
    if (!this.queue.some((w) => this.blocking(w, now)) && this.open(now) && this.fits(cmd)) {
      return granted(this.addLease(cmd, now), cmd.leaseId);
    }
    if (cmd.waitMs === 0) return this.busy(cmd, now, null);
    this.queue.push({ ...cmd, ...this.times(cmd, now) });
    this.grantPass(now);
    return this.settle(cmd, now);
  }

  renew(leaseId: string, ttlMs: number | null, mode: LockMode | null, now: number): Expected {
    const lease = this.holderOf(leaseId);
    if (lease === undefined) return this.notHeld(leaseId);
    if (mode === "exclusive" && lease.mode === "shared") {
      return { kind: "rejected", code: "upgrade_not_supported" };
    }
    lease.ttlMs = ttlMs ?? lease.ttlMs;
    lease.expiresAt = now + lease.ttlMs;
    lease.mode = mode ?? lease.mode;
    return granted(lease, leaseId);
  }

  release(leaseId: string, now: number): Expected {
    const lease = this.holderOf(leaseId);
    if (lease !== undefined) {
      if (lease.holds.length === 1) {
        this.end(lease, "released", now);
        // The release came over HTTP: a session's lease released there is lost to its session.
        if (lease.session !== null) this.lostNow.push(`${lease.leaseId}:released`);
        return { kind: "released", holdCount: 0 };
      }
      // The hold this id names ends, in whatever order the holds are given back.
      lease.holds = lease.holds.filter((h) => h !== leaseId);
      this.markEnded(leaseId, "released");
      return { kind: "released", holdCount: lease.holds.length };
    }
    if (this.queue.some((w) => w.leaseId === leaseId)) {
      this.queue = this.queue.filter((w) => w.leaseId !== leaseId);
      this.markEnded(leaseId, "cancelled");
      return { kind: "cancelled" };
    }
    const ended = this.ended.get(leaseId);
    if (ended?.reason === "released") return { kind: "released", holdCount: null };
    if (ended?.reason === "cancelled") return { kind: "cancelled" };
    return this.notHeld(leaseId);
  }

  closeSession(session: string, now: number): Expected {
    const waits = this.queue.filter((w) => w.session === session);
    for (const w of waits) this.markEnded(w.leaseId, "session_closed");
    this.queue = this.queue.filter((w) => w.session !== session);
    const leases = this.holders.filter((l) => l.session === session);
    for (const l of leases) this.end(l, "session_closed", now);
    return { kind: "sessionClosed", leases: leases.length, waits: waits.length };
  }
}

/** What the model expects of an outcome: the fields it can predict. */
type Expected = Record<string, unknown> & { kind: Outcome["kind"] };

function granted(l: ModelLease, holdId: string): Expected {
  return {
    kind: "granted",
    leaseId: holdId,
    token: l.token,
    holdCount: l.holds.length,
    expiresAt: l.expiresAt,
    mode: l.mode,
    permits: l.permits,
  };
}

/** The machine's outcome in the model's terms, so the two compare field by field. */
function observed(o: Outcome): Expected {
  switch (o.kind) {
    case "granted": {
      const l = o.lease;
      return {
        kind: "granted",
        leaseId: o.holdId,
        token: l.token,
        holdCount: l.holds.length,
        expiresAt: l.expiresAt,
        mode: l.mode,
        permits: l.permits,
      };
    }
    case "queued":
      return { kind: "queued", leaseId: o.leaseId };
    case "rejected":
      switch (o.code) {
        case "lock_held":
        case "lock_delay":
        case "waiters_ahead":
          // Answers stay small whatever the lock holds.
          expect(o.holders.length).toBeLessThanOrEqual(MAX_HOLDERS_IN_PROBLEM);
          return {
            kind: "rejected",
            code: o.code,
            position: o.position,
            leaseId: o.leaseId,
            holderCount: o.holderCount,
            holders: o.holders.map((h) => h.token),
          };
        case "not_held":
          return o.reason === "queued"
            ? { kind: "rejected", code: "not_held", reason: "queued" }
            : { kind: "rejected", code: "not_held", reason: o.reason, by: o.by };
        case "too_many_holds":
          return { kind: "rejected", code: o.code };
        case "too_many_waiters":
          return { kind: "rejected", code: o.code };
        default: {
          const { retryAfterMs: _, ...rest } = o as typeof o & { retryAfterMs?: number };
          return rest;
        }
      }
    default:
      return o;
  }
}

interface Run {
  state: LockState;
  now: number;
  readonly model: Model;
  readonly history: MemoryHistory;
  readonly generation: number[];
  readonly log: string[];
}

function leaseIdOf(run: Run, slot: number): string {
  return `lease-${slot}-gen-${run.generation[slot]}`;
}

function toCommand(run: Run, op: Op, config: ConfigName): Command | null {
  switch (op.op) {
    case "acquire": {
      if (op.fresh) run.generation[op.slot] = (run.generation[op.slot] ?? 0) + 1;
      const semaphore = config === "semaphore" || (config === "mixed" && op.permits > 1);
      const shared = (config === "rwlock" || config === "mixed") && !semaphore && op.shared;
      return {
        type: "acquire",
        leaseId: leaseIdOf(run, op.slot),
        owner: OWNERS[op.owner] ?? null,
        principal: KEYS[op.key] ?? "key-a",
        ttlMs: op.ttlMs,
        waitMs: op.waitMs,
        mode: shared ? "shared" : "exclusive",
        limit: semaphore ? op.limit : null,
        permits: semaphore ? Math.min(op.permits, op.limit) : 1,
        holderKey: HOLDER_KEYS[op.holder] ?? null,
        session: SESSIONS[op.session] ?? null,
        repoll: op.repoll,
        lockDelayMs: op.lockDelay ? 300 : 0,
      };
    }
    case "renew":
      return {
        type: "renew",
        leaseId: leaseIdOf(run, op.slot),
        ttlMs: op.ttlMs,
        mode: config === "rwlock" || config === "mixed" ? op.mode : null,
      };
    case "release":
      return { type: "release", leaseId: leaseIdOf(run, op.slot) };
    case "waitEnded":
      return { type: "waitEnded", leaseId: leaseIdOf(run, op.slot) };
    case "forceRelease":
      return { type: "forceRelease", by: ADMIN };
    case "sessionClosed":
      return { type: "sessionClosed", session: SESSIONS[op.session] ?? "session-1" };
    case "tick":
      return { type: "tick" };
    case "advance":
      run.now += op.ms;
      return null;
    case "toDeadline": {
      const deadline = nextDeadline(run.state, run.now);
      if (deadline !== null) run.now = Math.max(run.now, deadline + op.offsetMs);
      return null;
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(op satisfies never)}`);
  }
}

/** What the model predicts for one command at `now`. */
function predict(model: Model, cmd: Command, now: number): Expected {
  switch (cmd.type) {
    case "acquire":
      return model.acquire(cmd, now);
    case "renew":
      return model.renew(cmd.leaseId, cmd.ttlMs, cmd.mode, now);
    case "release":
      return model.release(cmd.leaseId, now);
    case "forceRelease": {
      const count = model.holders.length;
      for (const l of [...model.holders]) model.end(l, "forced", now, ADMIN);
      return { kind: "forced", count };
    }
    case "sessionClosed":
      return model.closeSession(cmd.session, now);
    case "waitEnded": {
      const w = model.queue.find((q) => q.leaseId === cmd.leaseId);
      return model.busy(w ?? { mode: "exclusive", permits: 1 }, now, w === undefined ? null : cmd.leaseId);
    }
    case "tick":
      return { kind: "none" };
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd satisfies never)}`);
  }
}

/** Applies one command to the machine and the model, and checks the answer, the effects and the state. */
function step(run: Run, cmd: Command): void {
  const { model, now } = run;
  const result: Step = transition(run.state, cmd, now, run.history);
  run.history.record(result);
  run.log.push(`${now - T0}ms ${JSON.stringify(cmd)} -> ${JSON.stringify(result.outcome)}`);

  model.begin(now, cmd);
  const expected = predict(model, cmd, now);
  model.grantPass(now);

  expect(observed(result.outcome)).toEqual(expected);
  // Grants to parked requests: exactly the waiters the model serves, in FIFO order.
  expect(result.effects.granted.map((l) => [l.leaseId, l.token])).toEqual(
    model.grantedNow.map((l) => [l.leaseId, l.token]),
  );
  // Every lease lost other than by its holder's release is reported once, for its holder to hear.
  expect(result.effects.lost.map((l) => `${l.lease.leaseId}:${l.reason}`).sort()).toEqual(
    [...model.lostNow].sort(),
  );
  // Every lease id that ended is reported once, for storage to remember.
  expect(result.effects.ended.map((t) => t.leaseId).sort()).toEqual([...model.endedNow].sort());
  checkState(run, result.state);
  run.state = result.state;
}

/** The invariants of any reachable state at time `now`, and its agreement with the model. */
function checkState(run: Run, s: LockState): void {
  const { model, now } = run;
  // Mutual exclusion.
  if (s.limit > 1) {
    expect(permitsInUse(s)).toBeLessThanOrEqual(s.limit);
  } else if (s.holders.length > 1) {
    expect(
      s.holders.every((l) => l.mode === "shared"),
      "two holders, not all shared",
    ).toBe(true);
  }
  // Tokens: strictly increasing, never reused by another lease.
  const tokens = s.holders.map((l) => l.token);
  expect(new Set(tokens).size).toBe(tokens.length);
  for (const l of s.holders) {
    expect(l.expiresAt).toBeGreaterThan(now);
    expect(l.token).toBeLessThanOrEqual(s.lastToken);
    expect(model.tokens.get(l.token)).toBe(l.leaseId);
    expect(l.holds.length).toBeGreaterThan(0);
    expect(new Set(l.holds).size).toBe(l.holds.length);
  }
  // Queue order is arrival order.
  for (let i = 1; i < s.queue.length; i++) {
    expect((s.queue[i] as { seq: number }).seq).toBeGreaterThan((s.queue[i - 1] as { seq: number }).seq);
  }
  // Work-conserving: the first request that is waiting now does not fit the free capacity, or is reserved.
  const first = s.queue.find((w) => now <= w.reserveUntil);
  if (first !== undefined && now <= first.waitUntil && now >= s.delayUntil) {
    expect(model.fits(first), `${first.leaseId} fits free capacity but was left waiting`).toBe(false);
  }
  // No lost wake-up: nothing is granted or ends by itself before the deadline the alarm is set for.
  const deadline = nextDeadline(s, now);
  const quiet = deadline === null ? now + 3_600_000 : deadline - 1;
  if (quiet > now) {
    const idle = transition(s, { type: "tick" }, quiet, run.history);
    expect(idle.effects.granted, `granted at ${quiet - T0} before the deadline`).toEqual([]);
    expect(idle.effects.ended, `ended at ${quiet - T0} before the deadline`).toEqual([]);
    expect(idle.state.queue.map((w) => w.leaseId)).toEqual(s.queue.map((w) => w.leaseId));
  }
  // Agreement with the model.
  expect(s.lastToken).toBe(model.lastToken);
  expect(s.limit).toBe(model.limit);
  const show = (l: { leaseId: string; token: number; holds: readonly string[] }) =>
    `${l.leaseId}#${l.token}[${l.holds.join(",")}]`;
  expect(s.holders.map(show).sort()).toEqual(model.holders.map(show).sort());
  expect(s.queue.map((w) => w.leaseId)).toEqual(model.queue.map((w) => w.leaseId));
  if (s.delayUntil > now) expect(s.delayUntil).toBe(model.delayUntil);
}

function runOps(config: ConfigName, ops: readonly Op[]): void {
  const run: Run = {
    state: EMPTY_STATE,
    now: T0,
    model: new Model(),
    history: new MemoryHistory(),
    generation: Array.from({ length: SLOTS }, () => 0),
    log: [],
  };
  try {
    for (const op of ops) {
      const cmd = toCommand(run, op, config);
      if (cmd !== null) step(run, cmd);
    }
    // After everything stops and every deadline passes, the lock ends free.
    run.now += 5_000 + REPOLL_GRACE_MS + REPOLL_RESERVE_MS + 25_000;
    step(run, { type: "tick" });
    expect(run.state.holders).toEqual([]);
    expect(run.state.queue).toEqual([]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- ${config} trace ---\n${run.log.join("\n")}`, {
      cause: err,
    });
  }
}

describe("lock state machine against a reference model", () => {
  for (const config of ["mutex", "rwlock", "semaphore", "mixed"] as const) {
    it(`keeps every invariant under random ${config} command sequences`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 20, maxLength: 100, size: "max" }), (ops) =>
          runOps(config, ops),
        ),
        { seed: SEED, numRuns: Math.ceil(RUNS / 4) },
      );
      // A few seconds each on an idle machine; generous, since CI machines are shared.
    }, 60_000);
  }
});
