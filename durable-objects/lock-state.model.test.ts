/**
 * Model-based test of the pure lock state machine: fast-check drives random sequences of acquire, renew,
 * release, force-release, clock advances and alarm ticks against a small reference model (which lease holds
 * which token, who waits in which order, which lease ids have ended) and checks the safety invariants after
 * every step. The rule-by-rule examples live in lock-state.test.ts; this file hunts for sequences nobody wrote.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type LockMode, REPOLL_GRACE_MS } from "../client/src/protocol.ts";
import {
  type Command,
  EMPTY_STATE,
  type LeaseRecord,
  type LockState,
  nextDeadline,
  permitsInUse,
  type Step,
  transition,
} from "./lock-state.ts";

/**
 * Seeded so that a failure in CI reproduces locally. To explore, change SEED (or raise RUNS) here: this file
 * runs inside workerd, which does not see the shell's environment. Seeds 1–6 × 8000 runs passed.
 */
const SEED = 20261122;
/** The admin key name every generated force-release is attributed to. */
const ADMIN = "model-admin";
/** Who the machine must name when a lease is not held for `reason`: only force-releases have a "by". */
const forcedBy = (reason: string) => (reason === "forced" ? ADMIN : null);
const RUNS = 1000;
const T0 = 1_000_000;
const SLOTS = 5;

type ConfigName = "mutex" | "rwlock" | "semaphore" | "mixed";

/** A command as generated: slots and choices, turned into a `Command` by the runner for one lock config. */
type Op =
  | {
      op: "acquire";
      slot: number;
      fresh: boolean;
      owner: number;
      shared: boolean;
      permits: number;
      waitMs: number;
      ttlMs: number;
      reentrant: boolean;
      lockDelay: boolean;
      semaphore: boolean;
    }
  | { op: "renew"; slot: number; ttlMs: number | null; mode: LockMode | null }
  | { op: "release"; slot: number }
  | { op: "forceRelease" }
  | { op: "advance"; ms: number }
  /** Jumps to the machine's next deadline (plus `offsetMs`), where off-by-one expiry bugs live. */
  | { op: "toDeadline"; offsetMs: number }
  | { op: "tick" };

const OWNERS = ["owner-a", "owner-b", null] as const;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("acquire" as const),
      slot: fc.nat(SLOTS - 1),
      fresh: fc.boolean(),
      owner: fc.nat(OWNERS.length - 1),
      shared: fc.boolean(),
      permits: fc.integer({ min: 1, max: 3 }),
      waitMs: fc.constantFrom(0, 0, 150, 600, 2_000),
      ttlMs: fc.constantFrom(100, 250, 800),
      reentrant: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, fc.constant(true)),
      lockDelay: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, fc.constant(true)),
      semaphore: fc.boolean(),
    }),
  },
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
  readonly owner: string | null;
  readonly reentrant: boolean;
  readonly lockDelayMs: number;
  expiresAt: number;
  holdCount: number;
  mode: LockMode;
  readonly permits: number;
  /** Other lease ids whose acquire was answered with this lease (reentrant holds). */
  readonly aliases: Set<string>;
}

interface ModelWaiter {
  readonly leaseId: string;
  readonly owner: string | null;
  readonly reentrant: boolean;
  waitUntil: number;
  holdUntil: number;
}

type EndReason = "expired" | "released" | "cancelled" | "forced";

/**
 * The reference model. It does not decide who gets the lock next (the machine does); it knows enough to say
 * which answers are impossible, and it tracks what the machine's state must contain.
 */
class Model {
  readonly holders = new Map<string, ModelLease>();
  queue: ModelWaiter[] = [];
  readonly ended = new Map<string, EndReason>();
  readonly tokens = new Map<number, string>();
  lastToken = 0;
  delayUntil = 0;
  limit = 1;

  expire(now: number): void {
    for (const l of [...this.holders.values()]) {
      if (l.expiresAt <= now) this.end(l, "expired", l.expiresAt);
    }
    this.queue = this.queue.filter((w) => w.holdUntil > now);
  }

  end(l: ModelLease, reason: EndReason, endedAt: number): void {
    this.holders.delete(l.leaseId);
    // Every id the lease was acquired under ends with it: lease ids are single-use.
    for (const id of [l.leaseId, ...l.aliases]) this.ended.set(id, reason);
    if (reason !== "released" && l.lockDelayMs > 0) {
      this.delayUntil = Math.max(this.delayUntil, endedAt + l.lockDelayMs);
    }
  }

  holderOf(leaseId: string): ModelLease | undefined {
    for (const l of this.holders.values()) {
      if (l.leaseId === leaseId || l.aliases.has(leaseId)) return l;
    }
    return undefined;
  }

  grant(lease: LeaseRecord, aliases: Set<string> = new Set()): void {
    this.holders.set(lease.leaseId, {
      leaseId: lease.leaseId,
      token: lease.token,
      owner: lease.owner,
      reentrant: lease.reentrant,
      lockDelayMs: lease.lockDelayMs,
      expiresAt: lease.expiresAt,
      holdCount: lease.holdCount,
      mode: lease.mode,
      permits: lease.permits,
      aliases,
    });
    this.tokens.set(lease.token, lease.leaseId);
    this.lastToken = lease.token;
    this.queue = this.queue.filter((w) => w.leaseId !== lease.leaseId);
  }

  /** Whether `req` fits next to the current holders (the lock's compatibility rule, written independently). */
  fits(req: { mode: LockMode; permits: number }): boolean {
    const holders = [...this.holders.values()];
    if (this.limit > 1) return holders.reduce((n, l) => n + l.permits, 0) + req.permits <= this.limit;
    if (holders.length === 0) return true;
    return req.mode === "shared" && holders.every((l) => l.mode === "shared");
  }
}

interface Run {
  state: LockState;
  now: number;
  readonly model: Model;
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
      const semaphore = config === "semaphore" || (config === "mixed" && op.semaphore);
      const shared = (config === "rwlock" || (config === "mixed" && !semaphore)) && op.shared;
      const owner = OWNERS[op.owner] ?? null;
      return {
        type: "acquire",
        leaseId: leaseIdOf(run, op.slot),
        owner,
        ttlMs: op.ttlMs,
        waitMs: op.waitMs,
        mode: shared ? "shared" : "exclusive",
        limit: semaphore ? 3 : null,
        permits: semaphore ? op.permits : 1,
        reentrant: op.reentrant && owner !== null,
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
    case "forceRelease":
      return { type: "forceRelease", by: ADMIN };
    case "tick":
      return { type: "tick" };
    case "advance":
      run.now += op.ms;
      return null;
    case "toDeadline": {
      const deadline = nextDeadline(run.state);
      if (deadline !== null) run.now = Math.max(run.now, deadline + op.offsetMs);
      return null;
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(op satisfies never)}`);
  }
}

/** Applies one command to the machine and the model, checking every answer and invariant on the way. */
function step(run: Run, cmd: Command): void {
  const { model, now } = run;
  const before = run.state;
  const result: Step = transition(before, cmd, now);
  run.log.push(`${now - T0}ms ${JSON.stringify(cmd)} -> ${JSON.stringify(result.outcome)}`);
  const { outcome, effects, state } = result;

  model.expire(now);
  if (model.delayUntil <= now) model.delayUntil = 0;
  const idleBefore = model.holders.size === 0 && model.queue.length === 0;
  const fromQueue: LeaseRecord[] = [...effects.granted];

  switch (cmd.type) {
    case "acquire": {
      const ended = model.ended.get(cmd.leaseId);
      const held = model.holderOf(cmd.leaseId);
      const own =
        cmd.reentrant && cmd.owner !== null
          ? [...model.holders.values()].find((l) => l.reentrant && l.owner === cmd.owner)
          : undefined;
      // Only the leaseId identifies a waiter; reentrancy counts a holder's holds and never merges waiters.
      const queued = model.queue.find((w) => w.leaseId === cmd.leaseId);
      if (ended !== undefined) {
        // Lease ids are single-use: a retry after the lease ended must never be a second grant.
        expect(outcome).toMatchObject({ kind: "rejected", code: "lease_ended", reason: ended });
      } else if (held !== undefined) {
        // Idempotent retry: the same lease, the same token, no extra hold.
        expect(outcome).toMatchObject({
          kind: "granted",
          lease: { token: held.token, holdCount: held.holdCount },
        });
      } else if (own !== undefined) {
        expect(outcome).toMatchObject({
          kind: "granted",
          lease: { token: own.token, leaseId: own.leaseId, holdCount: own.holdCount + 1 },
        });
        own.holdCount += 1;
        own.aliases.add(cmd.leaseId);
        if (outcome.kind === "granted") own.expiresAt = outcome.lease.expiresAt;
      } else if (queued !== undefined) {
        queued.waitUntil = now + cmd.waitMs;
        queued.holdUntil = now + cmd.waitMs + REPOLL_GRACE_MS;
        if (outcome.kind === "granted") {
          expect(outcome.lease.leaseId).toBe(queued.leaseId);
          fromQueue.push(outcome.lease);
        } else if (outcome.kind === "queued") {
          expect(outcome.leaseId).toBe(queued.leaseId);
          expect(cmd.waitMs).toBeGreaterThan(0);
        } else {
          expect(outcome).toMatchObject({ kind: "rejected" });
          expect(["lock_held", "lock_delay"]).toContain(outcome.kind === "rejected" && outcome.code);
        }
      } else {
        const stated = cmd.limit ?? 1;
        if (!idleBefore && stated !== model.limit) {
          expect(outcome).toMatchObject({ kind: "rejected", code: "limit_mismatch", limit: model.limit });
          break;
        }
        if (idleBefore) model.limit = stated;
        const mustGrant = model.queue.length === 0 && now >= model.delayUntil && model.fits(cmd);
        const waiter: ModelWaiter = {
          leaseId: cmd.leaseId,
          owner: cmd.owner,
          reentrant: cmd.reentrant,
          waitUntil: now + cmd.waitMs,
          holdUntil: now + cmd.waitMs + REPOLL_GRACE_MS,
        };
        if (mustGrant) {
          expect(outcome).toMatchObject({ kind: "granted", lease: { leaseId: cmd.leaseId } });
          if (outcome.kind === "granted") {
            expect(outcome.lease.token).toBe(model.lastToken + 1);
            expect(outcome.lease.expiresAt).toBe(now + cmd.ttlMs);
            model.grant(outcome.lease);
          }
        } else if (outcome.kind === "granted") {
          // Not grantable on arrival, so it may only be granted by joining the queue's tail and being reached
          // in the same step (the FIFO check below holds it to that).
          expect(cmd.waitMs, `newcomer ${cmd.leaseId} granted past the queue or a holder`).toBeGreaterThan(0);
          model.queue.push(waiter);
          fromQueue.push(outcome.lease);
        } else if (outcome.kind === "queued") {
          expect(cmd.waitMs).toBeGreaterThan(0);
          model.queue.push(waiter);
        } else if (outcome.kind === "rejected") {
          expect(["lock_held", "lock_delay", "too_many_waiters"]).toContain(outcome.code);
          expect(cmd.waitMs).toBe(0);
        }
      }
      break;
    }
    case "renew": {
      const held = model.holders.get(cmd.leaseId);
      if (held === undefined) {
        const reason = model.queue.some((w) => w.leaseId === cmd.leaseId)
          ? "queued"
          : (model.ended.get(cmd.leaseId) ?? "unknown");
        expect(outcome).toEqual({ kind: "rejected", code: "not_held", reason, by: forcedBy(reason) });
      } else if (cmd.mode === "exclusive" && held.mode === "shared") {
        expect(outcome).toEqual({ kind: "rejected", code: "upgrade_not_supported" });
      } else {
        const ttl = cmd.ttlMs ?? (before.holders.find((l) => l.leaseId === held.leaseId)?.ttlMs as number);
        expect(outcome).toMatchObject({
          kind: "granted",
          lease: { token: held.token, expiresAt: now + ttl },
        });
        held.expiresAt = now + ttl;
        held.mode = cmd.mode ?? held.mode;
      }
      break;
    }
    case "release": {
      const held = model.holders.get(cmd.leaseId);
      const queued = model.queue.find((w) => w.leaseId === cmd.leaseId);
      const ended = model.ended.get(cmd.leaseId);
      if (held !== undefined && held.holdCount > 1) {
        held.holdCount -= 1;
        expect(outcome).toEqual({ kind: "released", holdCount: held.holdCount });
      } else if (held !== undefined) {
        expect(outcome).toEqual({ kind: "released", holdCount: 0 });
        model.end(held, "released", now);
      } else if (queued !== undefined) {
        expect(outcome).toEqual({ kind: "cancelled" });
        expect(effects.cancelled).toEqual([cmd.leaseId]);
        model.queue = model.queue.filter((w) => w !== queued);
        model.ended.set(cmd.leaseId, "cancelled");
      } else if (ended === "released") {
        expect(outcome).toEqual({ kind: "released", holdCount: 0 });
      } else if (ended === "cancelled") {
        expect(outcome).toEqual({ kind: "cancelled" });
      } else {
        const reason = ended ?? "unknown";
        expect(outcome).toEqual({ kind: "rejected", code: "not_held", reason, by: forcedBy(reason) });
      }
      break;
    }
    case "forceRelease": {
      expect(outcome).toEqual({ kind: "forced", count: model.holders.size });
      for (const l of [...model.holders.values()]) model.end(l, "forced", now);
      break;
    }
    case "tick":
      expect(outcome).toEqual({ kind: "none" });
      break;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd satisfies never)}`);
  }
  if (model.delayUntil <= now) model.delayUntil = 0;

  // FIFO: waiters are granted from the head, in arrival order, only while their wait is live.
  fromQueue.sort((a, b) => a.token - b.token);
  const queueNow = model.queue.map((w) => w.leaseId);
  expect(fromQueue.map((l) => l.leaseId)).toEqual(queueNow.slice(0, fromQueue.length));
  for (const lease of fromQueue) {
    const w = model.queue.find((x) => x.leaseId === lease.leaseId) as ModelWaiter;
    expect(w.waitUntil, `waiter ${lease.leaseId} granted after its waitUntil`).toBeGreaterThanOrEqual(now);
    expect(lease.token).toBe(model.lastToken + 1);
    model.grant(lease);
  }
  // Every new lease is announced exactly once: in the outcome or in effects.granted.
  const announced = [...effects.granted.map((l) => l.leaseId)];
  if (outcome.kind === "granted" && !before.holders.some((l) => l.token === outcome.lease.token)) {
    announced.push(outcome.lease.leaseId);
  }
  const added = state.holders
    .filter((l) => !before.holders.some((b) => b.token === l.token))
    .map((l) => l.leaseId);
  expect(announced.slice().sort()).toEqual(added.slice().sort());
  expect(new Set(announced).size).toBe(announced.length);
  // A waiter is never granted while queued behind someone still in line (no overtaking).
  for (const l of effects.granted) {
    const seq = before.queue.find((w) => w.leaseId === l.leaseId)?.seq;
    expect(seq, `effects granted ${l.leaseId}, which was not queued`).toBeDefined();
    for (const w of state.queue) expect(w.seq).toBeGreaterThan(seq as number);
  }
  checkState(run, state);
  run.state = state;
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
  // Expiry: nothing outlives its deadline, and the alarm is set no later than any deadline.
  const deadline = nextDeadline(s);
  for (const l of s.holders) {
    expect(l.expiresAt).toBeGreaterThan(now);
    expect(deadline).not.toBeNull();
    expect(deadline as number).toBeLessThanOrEqual(l.expiresAt);
  }
  for (const w of s.queue) {
    expect(w.holdUntil).toBeGreaterThan(now);
    expect(deadline as number).toBeLessThanOrEqual(w.holdUntil);
  }
  if (s.holders.length === 0 && s.queue.length === 0) expect(deadline).toBeNull();
  // Tokens: strictly increasing, never reused by another lease.
  const tokens = s.holders.map((l) => l.token);
  expect(new Set(tokens).size).toBe(tokens.length);
  for (const l of s.holders) {
    expect(l.token).toBeLessThanOrEqual(s.lastToken);
    expect(model.tokens.get(l.token)).toBe(l.leaseId);
  }
  // Queue order is arrival order.
  for (let i = 1; i < s.queue.length; i++) {
    expect((s.queue[i] as { seq: number }).seq).toBeGreaterThan((s.queue[i - 1] as { seq: number }).seq);
  }
  // No lost wake-up: a live head that fits is granted in the same step, not left for a later event.
  const head = s.queue[0];
  if (head !== undefined && head.waitUntil >= now && now >= s.delayUntil) {
    expect(model.fits(head), `head ${head.leaseId} fits but was left waiting`).toBe(false);
  }
  // Agreement with the model.
  expect(s.lastToken).toBe(model.lastToken);
  expect(s.limit).toBe(model.limit);
  expect(s.holders.map((l) => `${l.leaseId}#${l.token}x${l.holdCount}`).sort()).toEqual(
    [...model.holders.values()].map((l) => `${l.leaseId}#${l.token}x${l.holdCount}`).sort(),
  );
  expect(s.queue.map((w) => w.leaseId)).toEqual(model.queue.map((w) => w.leaseId));
  if (s.delayUntil > now) expect(s.delayUntil).toBe(model.delayUntil);
}

function runOps(config: ConfigName, ops: readonly Op[]): void {
  const run: Run = {
    state: EMPTY_STATE,
    now: T0,
    model: new Model(),
    generation: Array.from({ length: SLOTS }, () => 0),
    log: [],
  };
  try {
    for (const op of ops) {
      const cmd = toCommand(run, op, config);
      if (cmd !== null) step(run, cmd);
    }
    // After everything stops and every deadline passes, the lock ends free.
    run.now += 3_500 + REPOLL_GRACE_MS + 25_000;
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
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => runOps(config, ops)),
        { seed: SEED, numRuns: Math.ceil(RUNS / 4) },
      );
    });
  }
});
