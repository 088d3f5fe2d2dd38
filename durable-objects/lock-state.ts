/**
 * The rules of one named lock as a pure state machine: `transition(state, command, now)` returns the next
 * state, the outcome for the caller, and the effects the Durable Object shell must carry out (wake parked
 * waiters). A lock is a set of leases against a capacity plus a FIFO queue of waiters; mutexes, read-write
 * locks and counting semaphores are the same machine with different compatibility rules.
 * No runtime imports, no clock, no randomness: time is the `now` argument and ids come in commands.
 */
import {
  HOLDERS_PAGE_SIZE,
  type LockMode,
  MAX_WAITERS,
  type NotHeldReason,
  REPOLL_GRACE_MS,
} from "../client/src/protocol.ts";

/** How long the reason a lease ended is remembered, for retried releases and clear renew errors. */
export const TOMBSTONE_TTL_MS = 10 * 60_000;
export const MAX_TOMBSTONES = 256;
/** Retry-ids remembered per reentrant lease, so a retried reentrant acquire does not count twice. */
export const MAX_ALIASES = 16;

export interface LeaseRecord {
  readonly leaseId: string;
  readonly owner: string | null;
  readonly token: number;
  readonly ttlMs: number;
  readonly expiresAt: number;
  readonly grantedAt: number;
  readonly mode: LockMode;
  readonly permits: number;
  readonly holdCount: number;
  readonly reentrant: boolean;
  readonly lockDelayMs: number;
  /** Other leaseIds a reentrant acquire arrived with, each already counted in `holdCount`. */
  readonly aliases: readonly string[];
}

export interface Waiter {
  readonly leaseId: string;
  readonly owner: string | null;
  readonly ttlMs: number;
  readonly mode: LockMode;
  readonly permits: number;
  readonly reentrant: boolean;
  readonly lockDelayMs: number;
  /** Arrival order; a re-poll keeps it. */
  readonly seq: number;
  readonly enqueuedAt: number;
  /** The waiter may be granted while `now <= waitUntil` (its request is, or may still be, waiting). */
  readonly waitUntil: number;
  /** After `waitUntil` it keeps its place, without being granted, until this instant; then it is dropped. */
  readonly holdUntil: number;
}

export type EndReason = Extract<NotHeldReason, "expired" | "released" | "cancelled" | "forced">;

export interface Tombstone {
  readonly leaseId: string;
  readonly reason: EndReason;
  readonly endedAt: number;
  /** Who forced the lease out (an admin key's name), for `forced`; otherwise null. */
  readonly by: string | null;
}

export interface LockState {
  /** Permits of the lock; 1 for mutexes and read-write locks. Fixed while anyone holds or waits. */
  readonly limit: number;
  /** Highest fencing token ever issued. Never decreases. */
  readonly lastToken: number;
  readonly nextSeq: number;
  /** After a lost holder with a lock-delay, nothing is granted before this instant. */
  readonly delayUntil: number;
  readonly holders: readonly LeaseRecord[];
  /** FIFO, ordered by `seq`. */
  readonly queue: readonly Waiter[];
  readonly tombstones: readonly Tombstone[];
}

export const EMPTY_STATE: LockState = {
  limit: 1,
  lastToken: 0,
  nextSeq: 1,
  delayUntil: 0,
  holders: [],
  queue: [],
  tombstones: [],
};

export interface AcquireCommand {
  readonly type: "acquire";
  readonly leaseId: string;
  readonly owner: string | null;
  readonly ttlMs: number;
  readonly waitMs: number;
  readonly mode: LockMode;
  /** Stated semaphore limit, or null for a mutex/read-write lock (limit 1). */
  readonly limit: number | null;
  readonly permits: number;
  readonly reentrant: boolean;
  readonly lockDelayMs: number;
}

export type Command =
  | AcquireCommand
  | {
      readonly type: "renew";
      readonly leaseId: string;
      readonly ttlMs: number | null;
      readonly mode: LockMode | null;
    }
  | { readonly type: "release"; readonly leaseId: string }
  | { readonly type: "forceRelease"; readonly by: string }
  | { readonly type: "tick" };

export type Outcome =
  | { readonly kind: "granted"; readonly lease: LeaseRecord; readonly limit: number }
  | { readonly kind: "queued"; readonly leaseId: string; readonly waitUntil: number }
  | { readonly kind: "released"; readonly holdCount: number }
  | { readonly kind: "cancelled" }
  | { readonly kind: "forced"; readonly count: number }
  | { readonly kind: "none" }
  | Rejection;

export type Rejection =
  | {
      readonly kind: "rejected";
      readonly code: "lock_held" | "lock_delay";
      readonly retryAfterMs: number;
      /** 1-based place in the queue, when the request's leaseId is queued. */
      readonly position: number | null;
      readonly holders: readonly LeaseRecord[];
    }
  | {
      readonly kind: "rejected";
      readonly code: "not_held";
      readonly reason: NotHeldReason;
      /** Who forced the lease out, when `reason` is `forced`. */
      readonly by: string | null;
    }
  | { readonly kind: "rejected"; readonly code: "lease_ended"; readonly reason: EndReason }
  | { readonly kind: "rejected"; readonly code: "limit_mismatch"; readonly limit: number }
  | { readonly kind: "rejected"; readonly code: "upgrade_not_supported" }
  | { readonly kind: "rejected"; readonly code: "too_many_waiters"; readonly retryAfterMs: number };

export interface Effects {
  /** Leases granted to queued waiters during this step: their parked requests can be answered. */
  readonly granted: readonly LeaseRecord[];
  /** Queued waiters removed by an explicit cancel: their parked requests end with `wait_cancelled`. */
  readonly cancelled: readonly string[];
}

export interface Step {
  readonly state: LockState;
  readonly outcome: Outcome;
  readonly effects: Effects;
}

/** Applies one command at time `now`. Every command first expires what is due, so safety never waits on alarms. */
export function transition(state: LockState, command: Command, now: number): Step {
  const granted: LeaseRecord[] = [];
  const cancelled: string[] = [];
  let s = expireDue(state, now);
  let outcome: Outcome;
  switch (command.type) {
    case "tick":
      outcome = { kind: "none" };
      break;
    case "acquire":
      [s, outcome] = acquire(s, command, now);
      break;
    case "renew":
      [s, outcome] = renew(s, command.leaseId, command.ttlMs, command.mode, now);
      break;
    case "release":
      [s, outcome] = release(s, command.leaseId, now, cancelled);
      break;
    case "forceRelease":
      outcome = { kind: "forced", count: s.holders.length };
      s = endHolders(s, s.holders, "forced", now, command.by);
      break;
    default:
      return assertNever(command);
  }
  s = grantFromQueue(s, now, granted);
  if (outcome.kind === "queued") {
    // A re-poll that reached a free head is granted now and answered directly, not through effects.
    const leaseId = outcome.leaseId;
    const mine = granted.find((l) => l.leaseId === leaseId);
    if (mine !== undefined) {
      outcome = { kind: "granted", lease: mine, limit: s.limit };
      granted.splice(granted.indexOf(mine), 1);
    } else if (command.type === "acquire" && command.waitMs === 0) {
      outcome = waitTimedOut(s, leaseId, now);
    }
  }
  return { state: s, outcome, effects: { granted, cancelled } };
}

/** Ends leases and waiters whose time is up and forgets old tombstones. Idempotent. */
export function expireDue(state: LockState, now: number): LockState {
  let s = state;
  const expired = s.holders.filter((l) => l.expiresAt <= now);
  if (expired.length > 0) s = endHolders(s, expired, "expired", now);
  if (s.queue.some((w) => w.holdUntil <= now)) {
    s = { ...s, queue: s.queue.filter((w) => w.holdUntil > now) };
  }
  const oldest = s.tombstones[0];
  if (oldest !== undefined && oldest.endedAt + TOMBSTONE_TTL_MS <= now) {
    s = { ...s, tombstones: s.tombstones.filter((t) => t.endedAt + TOMBSTONE_TTL_MS > now) };
  }
  return s;
}

/** The earliest instant at which the state changes by itself, or null: where the alarm must be set. */
export function nextDeadline(state: LockState): number | null {
  let next = Number.POSITIVE_INFINITY;
  for (const l of state.holders) next = Math.min(next, l.expiresAt);
  for (const w of state.queue) next = Math.min(next, w.holdUntil);
  if (state.queue.length > 0 && state.delayUntil > 0) next = Math.min(next, state.delayUntil);
  return next === Number.POSITIVE_INFINITY ? null : next;
}

/** Why a queued waiter was not granted yet, for the answer to a request whose wait ran out. */
export function waitTimedOut(state: LockState, leaseId: string, now: number): Rejection {
  const s = expireDue(state, now);
  const index = s.queue.findIndex((w) => w.leaseId === leaseId);
  return busy(s, now, index === -1 ? null : index + 1);
}

export function permitsInUse(state: LockState): number {
  return state.holders.reduce((sum, l) => sum + l.permits, 0);
}

/** What an inspection shows of a lock at `now`, after `expireDue`. Holders still carry their leaseIds: the Worker drops them. */
export interface LockSnapshot {
  /** A semaphore by its limit; a read-write lock while shared leases are held; else a mutex. */
  readonly kind: "mutex" | "rwlock" | "semaphore";
  readonly limit: number;
  readonly lastToken: number;
  readonly waiters: number;
  readonly permitsInUse: number;
  /** When a lock-delay in force ends, or null. */
  readonly delayUntil: number | null;
  /** One page of holders in token order: those with a token above `after`, at most HOLDERS_PAGE_SIZE. */
  readonly holders: readonly LeaseRecord[];
  readonly holderCount: number;
  /** The `after` of the next page, or null on the last one. */
  readonly nextAfter: number | null;
}

export function snapshot(state: LockState, now: number, after = 0): LockSnapshot {
  const rest = state.holders.filter((l) => l.token > after);
  const page = rest.slice(0, HOLDERS_PAGE_SIZE);
  return {
    kind: state.limit > 1 ? "semaphore" : state.holders.some((l) => l.mode === "shared") ? "rwlock" : "mutex",
    limit: state.limit,
    lastToken: state.lastToken,
    waiters: state.queue.length,
    permitsInUse: permitsInUse(state),
    delayUntil: state.delayUntil > now ? state.delayUntil : null,
    holders: page,
    holderCount: state.holders.length,
    nextAfter: rest.length > page.length ? (page.at(-1)?.token ?? null) : null,
  };
}

function acquire(s: LockState, cmd: AcquireCommand, now: number): [LockState, Outcome] {
  const ended = s.tombstones.find((t) => t.leaseId === cmd.leaseId);
  if (ended !== undefined) return [s, { kind: "rejected", code: "lease_ended", reason: ended.reason }];

  // A retry of an acquire whose answer was lost: the same lease, never a second grant.
  const held = s.holders.find((l) => l.leaseId === cmd.leaseId || l.aliases.includes(cmd.leaseId));
  if (held !== undefined) return [s, { kind: "granted", lease: held, limit: s.limit }];

  if (cmd.reentrant && cmd.owner !== null) {
    const own = s.holders.find((l) => l.reentrant && l.owner === cmd.owner);
    if (own !== undefined) {
      const lease: LeaseRecord = {
        ...own,
        holdCount: own.holdCount + 1,
        ttlMs: cmd.ttlMs,
        expiresAt: Math.max(own.expiresAt, now + cmd.ttlMs),
        aliases: [...own.aliases, cmd.leaseId].slice(-MAX_ALIASES),
      };
      return [replaceHolder(s, own, lease), { kind: "granted", lease, limit: s.limit }];
    }
  }

  // Only the leaseId identifies a waiter: reentrancy counts holds, it never merges two waiters of one owner.
  const queuedIndex = s.queue.findIndex((w) => w.leaseId === cmd.leaseId);
  if (queuedIndex !== -1) return repoll(s, queuedIndex, cmd, now);

  const stated = cmd.limit ?? 1;
  const idle = s.holders.length === 0 && s.queue.length === 0;
  if (!idle && stated !== s.limit) {
    return [s, { kind: "rejected", code: "limit_mismatch", limit: s.limit }];
  }
  if (idle && stated !== s.limit) s = { ...s, limit: stated };

  if (s.queue.length === 0 && grantable(s, cmd, now)) {
    const lease = newLease(s, cmd, now);
    return [
      { ...s, lastToken: lease.token, holders: [...s.holders, lease] },
      { kind: "granted", lease, limit: s.limit },
    ];
  }
  if (cmd.waitMs === 0) return [s, busy(s, now, null)];
  if (s.queue.length >= MAX_WAITERS) {
    return [s, { kind: "rejected", code: "too_many_waiters", retryAfterMs: REPOLL_GRACE_MS }];
  }
  const waiter: Waiter = {
    leaseId: cmd.leaseId,
    owner: cmd.owner,
    ttlMs: cmd.ttlMs,
    mode: cmd.mode,
    permits: cmd.permits,
    reentrant: cmd.reentrant,
    lockDelayMs: cmd.lockDelayMs,
    seq: s.nextSeq,
    enqueuedAt: now,
    waitUntil: now + cmd.waitMs,
    holdUntil: now + cmd.waitMs + REPOLL_GRACE_MS,
  };
  return [
    { ...s, nextSeq: s.nextSeq + 1, queue: [...s.queue, waiter] },
    { kind: "queued", leaseId: waiter.leaseId, waitUntil: waiter.waitUntil },
  ];
}

/** A queued leaseId asks again: it keeps its place, and its wait starts over from `now`. */
function repoll(s: LockState, index: number, cmd: AcquireCommand, now: number): [LockState, Outcome] {
  const old = s.queue[index] as Waiter;
  const waiter: Waiter = {
    ...old,
    ttlMs: cmd.ttlMs,
    waitUntil: now + cmd.waitMs,
    holdUntil: now + cmd.waitMs + REPOLL_GRACE_MS,
  };
  const queue = s.queue.slice();
  queue[index] = waiter;
  return [
    { ...s, queue },
    { kind: "queued", leaseId: waiter.leaseId, waitUntil: waiter.waitUntil },
  ];
}

function renew(
  s: LockState,
  leaseId: string,
  ttlMs: number | null,
  mode: LockMode | null,
  now: number,
): [LockState, Outcome] {
  const lease = s.holders.find((l) => l.leaseId === leaseId);
  if (lease === undefined) return [s, notHeld(s, leaseId)];
  if (mode === "exclusive" && lease.mode === "shared") {
    return [s, { kind: "rejected", code: "upgrade_not_supported" }];
  }
  const ttl = ttlMs ?? lease.ttlMs;
  const renewed: LeaseRecord = { ...lease, ttlMs: ttl, expiresAt: now + ttl, mode: mode ?? lease.mode };
  return [replaceHolder(s, lease, renewed), { kind: "granted", lease: renewed, limit: s.limit }];
}

function release(s: LockState, leaseId: string, now: number, cancelled: string[]): [LockState, Outcome] {
  const lease = s.holders.find((l) => l.leaseId === leaseId);
  if (lease !== undefined) {
    if (lease.holdCount > 1) {
      const kept = { ...lease, holdCount: lease.holdCount - 1 };
      return [replaceHolder(s, lease, kept), { kind: "released", holdCount: kept.holdCount }];
    }
    return [endHolders(s, [lease], "released", now), { kind: "released", holdCount: 0 }];
  }
  if (s.queue.some((w) => w.leaseId === leaseId)) {
    cancelled.push(leaseId);
    const queue = s.queue.filter((w) => w.leaseId !== leaseId);
    return [{ ...addTombstone({ ...s, queue }, leaseId, "cancelled", now) }, { kind: "cancelled" }];
  }
  // Retries of a release or cancel that already happened succeed again; anything else is not held.
  const ended = s.tombstones.find((t) => t.leaseId === leaseId);
  if (ended?.reason === "released") return [s, { kind: "released", holdCount: 0 }];
  if (ended?.reason === "cancelled") return [s, { kind: "cancelled" }];
  return [s, notHeld(s, leaseId)];
}

function notHeld(s: LockState, leaseId: string): Rejection {
  if (s.queue.some((w) => w.leaseId === leaseId)) {
    return { kind: "rejected", code: "not_held", reason: "queued", by: null };
  }
  const ended = s.tombstones.find((t) => t.leaseId === leaseId);
  return { kind: "rejected", code: "not_held", reason: ended?.reason ?? "unknown", by: ended?.by ?? null };
}

/** Grants waiters from the head of the queue while the head can be granted: strict FIFO, no overtaking. */
function grantFromQueue(state: LockState, now: number, granted: LeaseRecord[]): LockState {
  let s = state;
  for (;;) {
    const head = s.queue[0];
    // A waiter whose wait ran out keeps its place for a re-poll but is not granted: the head blocks.
    if (head === undefined || head.waitUntil < now || !grantable(s, head, now)) return s;
    const lease = newLease(s, head, now);
    granted.push(lease);
    s = { ...s, lastToken: lease.token, holders: [...s.holders, lease], queue: s.queue.slice(1) };
  }
}

function grantable(
  s: LockState,
  req: { readonly mode: LockMode; readonly permits: number },
  now: number,
): boolean {
  if (now < s.delayUntil) return false;
  if (s.limit > 1) return permitsInUse(s) + req.permits <= s.limit;
  if (req.mode === "shared") return s.holders.every((l) => l.mode === "shared");
  return s.holders.length === 0;
}

function newLease(
  s: LockState,
  req: Pick<Waiter, "leaseId" | "owner" | "ttlMs" | "mode" | "permits" | "reentrant" | "lockDelayMs">,
  now: number,
): LeaseRecord {
  return {
    leaseId: req.leaseId,
    owner: req.owner,
    token: s.lastToken + 1,
    ttlMs: req.ttlMs,
    expiresAt: now + req.ttlMs,
    grantedAt: now,
    mode: req.mode,
    permits: req.permits,
    holdCount: 1,
    reentrant: req.reentrant,
    lockDelayMs: req.lockDelayMs,
    aliases: [],
  };
}

function endHolders(
  s: LockState,
  ended: readonly LeaseRecord[],
  reason: EndReason,
  now: number,
  by: string | null = null,
): LockState {
  if (ended.length === 0) return s;
  const gone = new Set(ended);
  let next: LockState = { ...s, holders: s.holders.filter((l) => !gone.has(l)) };
  for (const l of ended) {
    // A reentrant lease's aliases are lease ids too: each is single-use, and a retry of one must not start
    // a fresh lease.
    for (const id of [l.leaseId, ...l.aliases]) next = addTombstone(next, id, reason, now, by);
    // A lost holder may still be running: keep the lock closed for its lock-delay. A release frees at once.
    if (reason !== "released" && l.lockDelayMs > 0) {
      const endedAt = reason === "expired" ? l.expiresAt : now;
      next = { ...next, delayUntil: Math.max(next.delayUntil, endedAt + l.lockDelayMs) };
    }
  }
  if (next.delayUntil <= now) next = { ...next, delayUntil: 0 };
  return next;
}

function addTombstone(
  s: LockState,
  leaseId: string,
  reason: EndReason,
  now: number,
  by: string | null = null,
): LockState {
  const tombstones = [...s.tombstones, { leaseId, reason, endedAt: now, by }];
  return { ...s, tombstones: tombstones.slice(-MAX_TOMBSTONES) };
}

function replaceHolder(s: LockState, old: LeaseRecord, next: LeaseRecord): LockState {
  return { ...s, holders: s.holders.map((l) => (l === old ? next : l)) };
}

function busy(s: LockState, now: number, position: number | null): Rejection {
  const delayed = now < s.delayUntil;
  const freeAt = delayed
    ? s.delayUntil
    : s.holders.reduce((min, l) => Math.min(min, l.expiresAt), Number.POSITIVE_INFINITY);
  const retryAfterMs = Number.isFinite(freeAt) ? Math.max(0, freeAt - now) : REPOLL_GRACE_MS;
  return {
    kind: "rejected",
    code: delayed ? "lock_delay" : "lock_held",
    retryAfterMs,
    position,
    holders: s.holders,
  };
}

function assertNever(x: never): never {
  throw new Error(`unhandled command ${JSON.stringify(x)}`);
}
