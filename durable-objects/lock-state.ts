/**
 * The rules of one named lock as a pure state machine: `transition(state, command, now, history)` returns the
 * next state, the outcome for the caller, and the effects the Durable Object shell must carry out (answer
 * parked waiters, record ended lease ids). A lock is a set of leases against a capacity plus a FIFO queue of
 * waiters; mutexes, read-write locks and counting semaphores are the same machine with different compatibility
 * rules. No runtime imports, no clock, no randomness: time is the `now` argument and ids come in commands.
 */
import {
  HOLDERS_PAGE_SIZE,
  type HolderView,
  type Lease,
  type LockKind,
  type LockMode,
  MAX_HOLD_COUNT,
  MAX_HOLDERS_IN_PROBLEM,
  MAX_WAITERS,
  type NotHeldReason,
  QUEUE_VIEW_SIZE,
  REPOLL_GRACE_MS,
  REPOLL_RESERVE_MS,
  type WaiterView,
} from "../client/src/protocol.ts";
import {
  grantedEvent,
  holdReleasedEvent,
  leaseEndedEvent,
  type NewLockEvent,
  renewedEvent,
  waiterLeftEvent,
} from "./lock-events.ts";

/**
 * How long the reason a lease id ended is remembered: a late retry of its acquire gets `lease_ended` instead
 * of a fresh lease nobody holds, and a retried release or renew gets a precise answer. Ended ids live in
 * storage only (`History`), never in memory, so the promise holds under any traffic.
 */
export const TOMBSTONE_TTL_MS = 10 * 60_000;

export interface LeaseRecord {
  readonly leaseId: string;
  readonly owner: string | null;
  /** The API key (its name) that made the lease. Reentrancy is bound to it. */
  readonly principal: string;
  /** The holder's secret identity for reentrant holds; null for a non-reentrant lease. Never shown. */
  readonly holderKey: string | null;
  /** The session (WebSocket) that holds it, whose close ends it; null for a lease taken over HTTP. */
  readonly session: string | null;
  readonly token: number;
  readonly ttlMs: number;
  readonly expiresAt: number;
  readonly grantedAt: number;
  readonly mode: LockMode;
  readonly permits: number;
  readonly lockDelayMs: number;
  /**
   * The leaseIds of the holds this lease counts, in the order they were taken: the first acquire's, then one
   * per reentrant acquire. Each is its hold's handle: a retry with it is answered, not counted again; a
   * renew with it renews the lease; a release with it ends that hold only, in any order. The lease ends
   * when its last hold does. `leaseId` above stays the record's name even after its own hold ended.
   */
  readonly holds: readonly string[];
}

/** Holds a lease counts (reentrant acquires); 1 for any other lease. */
export function holdCount(l: LeaseRecord): number {
  return l.holds.length;
}

export interface Waiter {
  readonly leaseId: string;
  readonly owner: string | null;
  readonly principal: string;
  readonly holderKey: string | null;
  /** The session that waits, whose close cancels the wait; null for a request parked over HTTP. */
  readonly session: string | null;
  readonly ttlMs: number;
  readonly mode: LockMode;
  readonly permits: number;
  readonly lockDelayMs: number;
  /** Arrival order; a re-poll keeps it. */
  readonly seq: number;
  readonly enqueuedAt: number;
  /** Live: its request is (or may still be) waiting, so it may be granted while `now <= waitUntil`. */
  readonly waitUntil: number;
  /**
   * Reserved: its request ended but it promised to re-poll (`repoll`), so until this instant it keeps its
   * turn: nobody behind it is granted, and it is not granted either. Equals `waitUntil` without the promise.
   */
  readonly reserveUntil: number;
  /** Kept: after that, its place waits for a re-poll until this instant without blocking anyone; then dropped. */
  readonly holdUntil: number;
}

export type EndReason = Extract<
  NotHeldReason,
  "expired" | "released" | "cancelled" | "forced" | "session_closed"
>;

export interface Tombstone {
  readonly leaseId: string;
  readonly reason: EndReason;
  readonly endedAt: number;
  /** Who forced the lease out (an admin key's name), for `forced`; otherwise null. */
  readonly by: string | null;
}

/** Read access to the ended lease ids kept in storage; the shell answers from SQLite, tests from a Map. */
export interface History {
  ended(leaseId: string): Tombstone | null;
}

export const NO_HISTORY: History = { ended: () => null };

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
}

export const EMPTY_STATE: LockState = {
  limit: 1,
  lastToken: 0,
  nextSeq: 1,
  delayUntil: 0,
  holders: [],
  queue: [],
};

export interface AcquireCommand {
  readonly type: "acquire";
  readonly leaseId: string;
  readonly owner: string | null;
  /** The API key's name; reentrant holds match only under the same key. */
  readonly principal: string;
  readonly ttlMs: number;
  readonly waitMs: number;
  readonly mode: LockMode;
  /** Stated semaphore limit, or null for a mutex/read-write lock (limit 1). */
  readonly limit: number | null;
  readonly permits: number;
  /** Non-null makes the acquire reentrant: the holder's secret identity. */
  readonly holderKey: string | null;
  /** The session the acquire came over, or null for HTTP. */
  readonly session: string | null;
  /** The client will re-poll as soon as this request's wait runs out: keep its turn for REPOLL_RESERVE_MS. */
  readonly repoll: boolean;
  readonly lockDelayMs: number;
}

export interface RenewCommand {
  readonly type: "renew";
  readonly leaseId: string;
  readonly ttlMs: number | null;
  readonly mode: LockMode | null;
}

export interface ReleaseCommand {
  readonly type: "release";
  readonly leaseId: string;
  /** The session the release came over; absent for HTTP. A session's lease released elsewhere is lost to it. */
  readonly session?: string;
}

export interface ForceReleaseCommand {
  readonly type: "forceRelease";
  readonly by: string;
}

/** A session's connection is gone: everything it held or waited for ends now. */
export interface SessionClosedCommand {
  readonly type: "sessionClosed";
  readonly session: string;
}

/** The wait of the request parked for `leaseId` ran out: it is answered, and stops holding anyone up. */
export interface WaitEndedCommand {
  readonly type: "waitEnded";
  readonly leaseId: string;
}

/** Time passed (an alarm, an inspection): expire what is due and grant what can be granted. */
export interface TickCommand {
  readonly type: "tick";
}

export type Command =
  | AcquireCommand
  | RenewCommand
  | ReleaseCommand
  | ForceReleaseCommand
  | SessionClosedCommand
  | WaitEndedCommand
  | TickCommand;

export interface Granted {
  readonly kind: "granted";
  readonly lease: LeaseRecord;
  /** The hold this answer is for: the leaseId its acquire (or renew) was sent with. */
  readonly holdId: string;
  readonly limit: number;
}

export interface Queued {
  readonly kind: "queued";
  readonly leaseId: string;
  readonly waitUntil: number;
}

/** Why an acquire is not granted now: who holds, a lock-delay, or live waiters ahead of it. */
export interface Busy {
  readonly kind: "rejected";
  readonly code: "lock_held" | "lock_delay" | "waiters_ahead";
  readonly retryAfterMs: number;
  /** 1-based place among the waiters that are waiting now, when the request's leaseId is queued. */
  readonly position: number | null;
  /** The queued leaseId, with `position`: the client re-polls with it. */
  readonly leaseId: string | null;
  /** The first MAX_HOLDERS_IN_PROBLEM holders, as anyone may see them. */
  readonly holders: readonly HolderView[];
  readonly holderCount: number;
}

export interface NotHeld {
  readonly kind: "rejected";
  readonly code: "not_held";
  readonly reason: NotHeldReason;
  /** Who forced the lease out, when `reason` is `forced`. */
  readonly by: string | null;
}

export type AcquireOutcome =
  | Granted
  | Queued
  | Busy
  | { readonly kind: "rejected"; readonly code: "lease_ended"; readonly reason: EndReason }
  | { readonly kind: "rejected"; readonly code: "limit_mismatch"; readonly limit: number }
  | {
      readonly kind: "rejected";
      readonly code: "reentrant_mismatch";
      readonly mode: LockMode;
      readonly permits: number;
    }
  | { readonly kind: "rejected"; readonly code: "too_many_holds"; readonly holdCount: number }
  | { readonly kind: "rejected"; readonly code: "too_many_waiters"; readonly retryAfterMs: number };

export type RenewOutcome =
  | Granted
  | NotHeld
  | { readonly kind: "rejected"; readonly code: "upgrade_not_supported" };

export type ReleaseOutcome =
  /** Holds left on a reentrant lease; null for a retried release, whose first answer had it. */
  { readonly kind: "released"; readonly holdCount: number | null } | { readonly kind: "cancelled" } | NotHeld;

export type ForceReleaseOutcome = { readonly kind: "forced"; readonly count: number };

export type TickOutcome = { readonly kind: "none" };

/** What a closed session had: the leases it lost and the waits it left. */
export type SessionClosedOutcome = {
  readonly kind: "sessionClosed";
  readonly leases: number;
  readonly waits: number;
};

/** The outcome type of each command: a consumer handles only what its command can answer. */
export interface OutcomeOf {
  acquire: AcquireOutcome;
  renew: RenewOutcome;
  release: ReleaseOutcome;
  forceRelease: ForceReleaseOutcome;
  sessionClosed: SessionClosedOutcome;
  waitEnded: Busy;
  tick: TickOutcome;
}

export type Outcome = OutcomeOf[keyof OutcomeOf];
export type Rejection = Extract<Outcome, { kind: "rejected" }>;

export interface Effects {
  /** Leases granted to queued waiters during this step: their parked requests can be answered. */
  readonly granted: readonly LeaseRecord[];
  /** Queued waiters removed by an explicit cancel: their parked requests end with `wait_cancelled`. */
  readonly cancelled: readonly string[];
  /** Lease ids that ended in this step, for storage to remember for TOMBSTONE_TTL_MS. */
  readonly ended: readonly Tombstone[];
  /** Leases that ended in this step other than by their holder's release: their holders must hear it. */
  readonly lost: readonly Lost[];
  /** What happened in this step, for the lock's history: public fields only, in the order it happened. */
  readonly events: readonly NewLockEvent[];
}

export interface Lost {
  readonly lease: LeaseRecord;
  readonly reason: EndReason;
  readonly by: string | null;
}

export interface Step<O extends Outcome = Outcome> {
  readonly state: LockState;
  readonly outcome: O;
  readonly effects: Effects;
}

/** What one step accumulates besides the state: effects, and the history as it stands within the step. */
class StepLog {
  readonly granted: LeaseRecord[] = [];
  readonly cancelled: string[] = [];
  readonly ended: Tombstone[] = [];
  readonly lost: Lost[] = [];
  readonly events: NewLockEvent[] = [];
  constructor(
    readonly now: number,
    readonly history: History,
  ) {}

  /** How `leaseId` ended, if it did within TOMBSTONE_TTL_MS (including earlier in this very step). */
  endedAs(leaseId: string): Tombstone | null {
    const here = this.ended.find((t) => t.leaseId === leaseId);
    if (here !== undefined) return here;
    const past = this.history.ended(leaseId);
    return past !== null && past.endedAt + TOMBSTONE_TTL_MS > this.now ? past : null;
  }

  end(leaseId: string, reason: EndReason, by: string | null = null): void {
    this.ended.push({ leaseId, reason, endedAt: this.now, by });
  }
}

/**
 * Applies one command at time `now`. Every command first expires what is due (so safety never waits on an
 * alarm) and ends by granting every waiter that can be granted (so free capacity never waits on an event).
 */
export function transition<C extends Command>(
  state: LockState,
  command: C,
  now: number,
  history: History = NO_HISTORY,
): Step<OutcomeOf[C["type"]]> {
  const log = new StepLog(now, history);
  // The state at `now` first: what is due expires, and what can be granted is, before the command applies.
  let s = expireDue(state, log);
  if (command.type === "waitEnded") s = answerWait(s, command.leaseId, now);
  s = grantFromQueue(s, log);
  let outcome: Outcome;
  const cmd: Command = command;
  switch (cmd.type) {
    case "tick":
      outcome = { kind: "none" };
      break;
    case "acquire":
      [s, outcome] = acquire(s, cmd, log);
      break;
    case "renew":
      [s, outcome] = renew(s, cmd, log);
      break;
    case "release":
      [s, outcome] = release(s, cmd, log);
      break;
    case "forceRelease":
      outcome = { kind: "forced", count: s.holders.length };
      s = endHolders(s, s.holders, "forced", log, cmd.by);
      break;
    case "sessionClosed":
      [s, outcome] = closeSession(s, cmd.session, log);
      break;
    case "waitEnded":
      outcome = waitingAnswer(s, cmd.leaseId, now);
      break;
    default:
      return assertNever(cmd);
  }
  // A release, a downgrade or a force-release may have freed capacity: hand it on in the same step.
  s = grantFromQueue(s, log);
  const effects: Effects = {
    granted: log.granted,
    cancelled: log.cancelled,
    ended: log.ended,
    lost: log.lost,
    events: log.events,
  };
  return { state: s, outcome, effects } as Step<OutcomeOf[C["type"]]>;
}

/** Ends leases whose time is up and drops waiters whose kept place lapsed. Idempotent. */
function expireDue(state: LockState, log: StepLog): LockState {
  const { now } = log;
  let s = state;
  const expired = s.holders.filter((l) => l.expiresAt <= now);
  if (expired.length > 0) s = endHolders(s, expired, "expired", log);
  if (s.queue.some((w) => w.holdUntil <= now)) {
    for (const w of s.queue) if (w.holdUntil <= now) log.events.push(waiterLeftEvent(w, "timed_out", now));
    s = { ...s, queue: s.queue.filter((w) => w.holdUntil > now) };
  }
  if (s.delayUntil !== 0 && s.delayUntil <= now) s = { ...s, delayUntil: 0 };
  return s;
}

/**
 * A waiter's request is answered now that its wait ended. If it promised to re-poll, its turn is kept for
 * REPOLL_RESERVE_MS from this answer, not from when the wait was due to end: under load the answer can go
 * out late, and a re-poll cannot come before the answer it follows. Its kept place moves along likewise.
 */
function answerWait(s: LockState, leaseId: string, now: number): LockState {
  const index = s.queue.findIndex((w) => w.leaseId === leaseId);
  const w = s.queue[index];
  if (w === undefined || now <= w.waitUntil || w.reserveUntil <= w.waitUntil) return s;
  const reserveUntil = Math.max(w.reserveUntil, now + REPOLL_RESERVE_MS);
  const holdUntil = Math.max(w.holdUntil, now + REPOLL_GRACE_MS);
  if (reserveUntil === w.reserveUntil && holdUntil === w.holdUntil) return s;
  const queue = s.queue.slice();
  queue[index] = { ...w, reserveUntil, holdUntil };
  return { ...s, queue };
}

/** Whether a waiter is waiting now: live (its request waits) or reserved (its re-poll is on the way). */
export function isBlocking(w: Waiter, now: number): boolean {
  return now <= w.reserveUntil;
}

function isLive(w: Waiter, now: number): boolean {
  return now <= w.waitUntil;
}

/**
 * The earliest instant after `now` at which the state changes by itself, or null: where the alarm must be.
 * Leases expire; a lock-delay ends while someone waits; a waiter that holds up others stops doing so; a
 * kept place lapses (so its row is cleaned up).
 */
export function nextDeadline(state: LockState, now: number): number | null {
  let next = Number.POSITIVE_INFINITY;
  const consider = (t: number) => {
    if (t > now && t < next) next = t;
  };
  for (const l of state.holders) consider(l.expiresAt);
  const blocking = state.queue.filter((w) => isBlocking(w, now));
  if (blocking.length > 0) consider(state.delayUntil);
  // Only a waiter with another behind it can hold anyone up; the last one's end changes nothing for others.
  for (const w of blocking.slice(0, -1)) consider(isLive(w, now) ? w.waitUntil + 1 : w.reserveUntil + 1);
  // A session's wait has no request whose timer answers it: the alarm does, when it ends.
  for (const w of state.queue) if (w.session !== null) consider(w.waitUntil + 1);
  for (const w of state.queue) consider(w.holdUntil);
  return next === Number.POSITIVE_INFINITY ? null : next;
}

/** The answer to the request parked for `leaseId` when its wait ends (or a re-poll replaces it), at `now`. */
export function waitingAnswer(state: LockState, leaseId: string, now: number): Busy {
  const index = state.queue.findIndex((w) => w.leaseId === leaseId);
  const waiter = state.queue[index];
  if (waiter === undefined) return busy(state, { mode: "exclusive", permits: 1 }, now, null);
  const ahead = state.queue.slice(0, index).filter((w) => isBlocking(w, now));
  return busy(state, waiter, now, { leaseId, position: ahead.length + 1, ahead });
}

export function permitsInUse(state: LockState): number {
  return state.holders.reduce((sum, l) => sum + l.permits, 0);
}

/** What anyone may see of a holder: never its leaseId, holderKey or key name. */
export function holderView(l: LeaseRecord): HolderView {
  return {
    owner: l.owner,
    token: l.token,
    expiresAt: l.expiresAt,
    mode: l.mode,
    permits: l.permits,
    holdCount: holdCount(l),
  };
}

/** What anyone may see of a waiter: never its leaseId, holderKey or key name. */
export function waiterView(w: Waiter): WaiterView {
  return { owner: w.owner, mode: w.mode, permits: w.permits, waitingSince: w.enqueuedAt };
}

/**
 * A grant as its holder receives it (the wire `Lease` without the lock's name). `validForMs` counts from
 * `arrivedAt`, when the request reached the lock object: it was sent before that, so a client's
 * `sentAt + validForMs` is a deadline the lease cannot end before, however long the request waited.
 */
export function grantView({ lease: l, holdId, limit }: Granted, arrivedAt: number): Omit<Lease, "name"> {
  return {
    leaseId: holdId,
    owner: l.owner,
    token: l.token,
    ttlMs: l.ttlMs,
    expiresAt: l.expiresAt,
    validForMs: Math.max(0, l.expiresAt - arrivedAt),
    mode: l.mode,
    permits: l.permits,
    holdCount: holdCount(l),
    limit,
  };
}

/** What an inspection shows of a lock at `now` (after a tick): public views only. */
export interface LockSnapshot {
  /** A semaphore by its limit; a read-write lock while shared leases are held; else a mutex. */
  readonly kind: LockKind;
  readonly limit: number;
  readonly lastToken: number;
  /** Waiters waiting now (live or reserved); kept places of waiters that gave up are not counted. */
  readonly waiters: number;
  /** The first QUEUE_VIEW_SIZE of them, in queue order, as anyone may see them. */
  readonly queue: readonly WaiterView[];
  readonly permitsInUse: number;
  /** When a lock-delay in force ends, or null. */
  readonly delayUntil: number | null;
  /** One page of holders in token order: those with a token above `after`, at most HOLDERS_PAGE_SIZE. */
  readonly holders: readonly HolderView[];
  readonly holderCount: number;
  /** The `after` of the next page, or null on the last one. */
  readonly nextAfter: number | null;
}

/** A semaphore by its limit; a read-write lock while shared leases are held; else a mutex. */
export function lockKind(state: LockState): LockKind {
  return state.limit > 1 ? "semaphore" : state.holders.some((l) => l.mode === "shared") ? "rwlock" : "mutex";
}

export function snapshot(state: LockState, now: number, after = 0): LockSnapshot {
  const rest = state.holders.filter((l) => l.token > after);
  const page = rest.slice(0, HOLDERS_PAGE_SIZE);
  const waiting = state.queue.filter((w) => isBlocking(w, now));
  return {
    kind: lockKind(state),
    limit: state.limit,
    lastToken: state.lastToken,
    waiters: waiting.length,
    queue: waiting.slice(0, QUEUE_VIEW_SIZE).map(waiterView),
    permitsInUse: permitsInUse(state),
    delayUntil: state.delayUntil > now ? state.delayUntil : null,
    holders: page.map(holderView),
    holderCount: state.holders.length,
    nextAfter: rest.length > page.length ? (page.at(-1)?.token ?? null) : null,
  };
}

function acquire(state: LockState, cmd: AcquireCommand, log: StepLog): [LockState, AcquireOutcome] {
  const { now } = log;
  let s = state;
  // A retry of an acquire whose answer was lost: the same lease, never a second grant or hold.
  if (findHolder(s, cmd.leaseId) !== undefined) return settleAcquire(s, cmd, log);

  // Only the leaseId identifies a waiter: this is its re-poll, whatever else the request says.
  const queuedIndex = s.queue.findIndex((w) => w.leaseId === cmd.leaseId);
  if (queuedIndex !== -1)
    return settleAcquire(grantFromQueue(repoll(s, queuedIndex, cmd, now), log), cmd, log);

  const ended = log.endedAs(cmd.leaseId);
  if (ended !== null) return [s, { kind: "rejected", code: "lease_ended", reason: ended.reason }];

  const stated = cmd.limit ?? 1;
  const idle = s.holders.length === 0 && !s.queue.some((w) => isBlocking(w, now));
  if (!idle && stated !== s.limit) {
    return [s, { kind: "rejected", code: "limit_mismatch", limit: s.limit }];
  }
  if (idle && stated !== s.limit) {
    // A new limit drops the kept places of waiters that gave up: they were for the old lock.
    for (const w of s.queue) log.events.push(waiterLeftEvent(w, "timed_out", now));
    s = { ...s, limit: stated, queue: [] };
  }

  if (cmd.holderKey !== null) {
    const own = s.holders.find((l) => l.holderKey === cmd.holderKey && l.principal === cmd.principal);
    if (own !== undefined) return reenter(s, own, cmd, log);
  }

  if (!s.queue.some((w) => isBlocking(w, now)) && grantable(s, cmd, now)) {
    const lease = newLease(s, cmd, now);
    log.events.push(grantedEvent(lease, 0, now));
    return [
      { ...s, lastToken: lease.token, holders: [...s.holders, lease] },
      { kind: "granted", lease, holdId: lease.leaseId, limit: s.limit },
    ];
  }
  if (cmd.waitMs === 0) return [s, busy(s, cmd, now, null)];
  const room = makeRoom(s, log);
  if (room === null) {
    return [s, { kind: "rejected", code: "too_many_waiters", retryAfterMs: REPOLL_GRACE_MS }];
  }
  s = room;
  const waiter: Waiter = {
    leaseId: cmd.leaseId,
    owner: cmd.owner,
    principal: cmd.principal,
    holderKey: cmd.holderKey,
    session: cmd.session,
    ttlMs: cmd.ttlMs,
    mode: cmd.mode,
    permits: cmd.permits,
    lockDelayMs: cmd.lockDelayMs,
    seq: s.nextSeq,
    enqueuedAt: now,
    ...waitTimes(cmd, now),
  };
  s = { ...s, nextSeq: s.nextSeq + 1, queue: [...s.queue, waiter] };
  return settleAcquire(grantFromQueue(s, log), cmd, log);
}

/**
 * The outcome of an acquire whose leaseId holds or waits, after this step's grants: the one place that
 * decides between granted (a lease the request can take now), queued (it waits) and busy (it does not).
 */
function settleAcquire(s: LockState, cmd: AcquireCommand, log: StepLog): [LockState, AcquireOutcome] {
  // Granted in this step: the request that is here takes it, so it is not also announced as an effect.
  const mine = log.granted.findIndex((l) => l.leaseId === cmd.leaseId);
  if (mine !== -1) log.granted.splice(mine, 1);
  const held = findHolder(s, cmd.leaseId);
  if (held !== undefined) return [s, { kind: "granted", lease: held, holdId: cmd.leaseId, limit: s.limit }];
  const waiter = s.queue.find((w) => w.leaseId === cmd.leaseId) as Waiter;
  if (cmd.waitMs === 0) return [s, waitingAnswer(s, cmd.leaseId, log.now)];
  return [s, { kind: "queued", leaseId: waiter.leaseId, waitUntil: waiter.waitUntil }];
}

function waitTimes(
  cmd: AcquireCommand,
  now: number,
): Pick<Waiter, "waitUntil" | "reserveUntil" | "holdUntil"> {
  const waitUntil = now + cmd.waitMs;
  return {
    waitUntil,
    reserveUntil: cmd.repoll ? waitUntil + REPOLL_RESERVE_MS : waitUntil,
    holdUntil: waitUntil + REPOLL_GRACE_MS,
  };
}

/** A queued leaseId asks again: it keeps its place, and its wait starts over from `now`. */
function repoll(s: LockState, index: number, cmd: AcquireCommand, now: number): LockState {
  const queue = s.queue.slice();
  queue[index] = { ...(s.queue[index] as Waiter), ttlMs: cmd.ttlMs, ...waitTimes(cmd, now) };
  return { ...s, queue };
}

/** A reentrant acquire by the holder of `own`: one more hold, if it asks for what it holds. */
function reenter(
  s: LockState,
  own: LeaseRecord,
  cmd: AcquireCommand,
  log: StepLog,
): [LockState, AcquireOutcome] {
  const { now } = log;
  if (own.mode !== cmd.mode || own.permits !== cmd.permits) {
    return [s, { kind: "rejected", code: "reentrant_mismatch", mode: own.mode, permits: own.permits }];
  }
  if (holdCount(own) >= MAX_HOLD_COUNT) {
    return [s, { kind: "rejected", code: "too_many_holds", holdCount: holdCount(own) }];
  }
  const lease: LeaseRecord = {
    ...own,
    ttlMs: cmd.ttlMs,
    expiresAt: Math.max(own.expiresAt, now + cmd.ttlMs),
    holds: [...own.holds, cmd.leaseId],
  };
  log.events.push(grantedEvent(lease, 0, now));
  return [replaceHolder(s, own, lease), { kind: "granted", lease, holdId: cmd.leaseId, limit: s.limit }];
}

/** Frees a place in a full queue by dropping the oldest kept place of a waiter that gave up; null if none. */
function makeRoom(s: LockState, log: StepLog): LockState | null {
  if (s.queue.length < MAX_WAITERS) return s;
  const gone = s.queue.find((w) => !isBlocking(w, log.now));
  if (gone === undefined) return null;
  log.events.push(waiterLeftEvent(gone, "timed_out", log.now));
  return { ...s, queue: s.queue.filter((w) => w !== gone) };
}

function renew(s: LockState, cmd: RenewCommand, log: StepLog): [LockState, RenewOutcome] {
  const lease = findHolder(s, cmd.leaseId);
  if (lease === undefined) return [s, notHeld(s, cmd.leaseId, log)];
  if (cmd.mode === "exclusive" && lease.mode === "shared") {
    return [s, { kind: "rejected", code: "upgrade_not_supported" }];
  }
  const ttl = cmd.ttlMs ?? lease.ttlMs;
  const renewed: LeaseRecord = {
    ...lease,
    ttlMs: ttl,
    expiresAt: log.now + ttl,
    mode: cmd.mode ?? lease.mode,
  };
  log.events.push(renewedEvent(renewed, log.now));
  return [
    replaceHolder(s, lease, renewed),
    { kind: "granted", lease: renewed, holdId: cmd.leaseId, limit: s.limit },
  ];
}

function release(s: LockState, cmd: ReleaseCommand, log: StepLog): [LockState, ReleaseOutcome] {
  const { leaseId } = cmd;
  const lease = findHolder(s, leaseId);
  if (lease !== undefined) {
    if (holdCount(lease) === 1) {
      // Released by its leaseId over another channel: the session that holds it must hear it has lost it.
      if (lease.session !== null && lease.session !== (cmd.session ?? null)) {
        log.lost.push({ lease, reason: "released", by: null });
      }
      return [endHolders(s, [lease], "released", log), { kind: "released", holdCount: 0 }];
    }
    // One hold ends, the one this id names, whatever order the holds are given back in.
    log.end(leaseId, "released");
    const kept: LeaseRecord = { ...lease, holds: lease.holds.filter((h) => h !== leaseId) };
    log.events.push(holdReleasedEvent(kept, log.now));
    return [replaceHolder(s, lease, kept), { kind: "released", holdCount: holdCount(kept) }];
  }
  const waiter = s.queue.find((w) => w.leaseId === leaseId);
  if (waiter !== undefined) {
    log.events.push(waiterLeftEvent(waiter, "cancelled", log.now));
    log.cancelled.push(leaseId);
    log.end(leaseId, "cancelled");
    return [{ ...s, queue: s.queue.filter((w) => w.leaseId !== leaseId) }, { kind: "cancelled" }];
  }
  // Retries of a release or cancel that already happened succeed again; anything else is not held.
  const ended = log.endedAs(leaseId);
  if (ended?.reason === "released") return [s, { kind: "released", holdCount: null }];
  if (ended?.reason === "cancelled") return [s, { kind: "cancelled" }];
  return [s, notHeld(s, leaseId, log)];
}

/**
 * Ends what a session held (its lock-delays still apply: a dropped connection does not prove the holder
 * stopped) and withdraws what it waited for, each recorded as `session_closed`.
 */
function closeSession(s: LockState, session: string, log: StepLog): [LockState, SessionClosedOutcome] {
  const leases = s.holders.filter((l) => l.session === session);
  const waits = s.queue.filter((w) => w.session === session);
  for (const w of waits) {
    log.end(w.leaseId, "session_closed");
    log.events.push(waiterLeftEvent(w, "session_closed", log.now));
  }
  const next = endHolders(
    { ...s, queue: s.queue.filter((w) => w.session !== session) },
    leases,
    "session_closed",
    log,
  );
  return [next, { kind: "sessionClosed", leases: leases.length, waits: waits.length }];
}

function notHeld(s: LockState, leaseId: string, log: StepLog): NotHeld {
  if (s.queue.some((w) => w.leaseId === leaseId)) {
    return { kind: "rejected", code: "not_held", reason: "queued", by: null };
  }
  const ended = log.endedAs(leaseId);
  return { kind: "rejected", code: "not_held", reason: ended?.reason ?? "unknown", by: ended?.by ?? null };
}

function findHolder(s: LockState, leaseId: string): LeaseRecord | undefined {
  return s.holders.find((l) => l.holds.includes(leaseId));
}

/**
 * Grants waiters in queue order while they can be granted: strict FIFO among the waiters that are waiting
 * now. A live waiter that does not fit, or a reserved one, stops the pass (no overtaking, so writers and
 * large semaphore requests are never starved); a waiter that gave up is skipped, so it holds up nobody.
 */
function grantFromQueue(state: LockState, log: StepLog): LockState {
  const { now } = log;
  let s = state;
  for (const w of state.queue) {
    if (!isBlocking(w, now)) continue;
    if (!isLive(w, now) || !grantable(s, w, now)) return s;
    const lease = newLease(s, w, now);
    log.granted.push(lease);
    log.events.push(grantedEvent(lease, now - w.enqueuedAt, now));
    s = {
      ...s,
      lastToken: lease.token,
      holders: [...s.holders, lease],
      queue: s.queue.filter((q) => q !== w),
    };
  }
  return s;
}

/** Whether a request fits next to the current holders now, ignoring the queue. */
function grantable(
  s: LockState,
  req: { readonly mode: LockMode; readonly permits: number },
  now: number,
): boolean {
  return now >= s.delayUntil && fitsHolders(s, req);
}

function fitsHolders(s: LockState, req: { readonly mode: LockMode; readonly permits: number }): boolean {
  if (s.limit > 1) return permitsInUse(s) + req.permits <= s.limit;
  if (req.mode === "shared") return s.holders.every((l) => l.mode === "shared");
  return s.holders.length === 0;
}

function newLease(
  s: LockState,
  req: Pick<
    Waiter,
    "leaseId" | "owner" | "principal" | "holderKey" | "session" | "ttlMs" | "mode" | "permits" | "lockDelayMs"
  >,
  now: number,
): LeaseRecord {
  return {
    leaseId: req.leaseId,
    owner: req.owner,
    principal: req.principal,
    holderKey: req.holderKey,
    session: req.session,
    token: s.lastToken + 1,
    ttlMs: req.ttlMs,
    expiresAt: now + req.ttlMs,
    grantedAt: now,
    mode: req.mode,
    permits: req.permits,
    lockDelayMs: req.lockDelayMs,
    holds: [req.leaseId],
  };
}

function endHolders(
  s: LockState,
  ended: readonly LeaseRecord[],
  reason: EndReason,
  log: StepLog,
  by: string | null = null,
): LockState {
  if (ended.length === 0) return s;
  const gone = new Set(ended);
  let delayUntil = s.delayUntil;
  for (const l of ended) {
    // Each hold's leaseId is single-use: a retry of any of them must not start a fresh lease.
    for (const id of l.holds) log.end(id, reason, by);
    log.events.push(leaseEndedEvent(l, reason, log.now, by));
    if (reason !== "released") log.lost.push({ lease: l, reason, by });
    // A lost holder may still be running: keep the lock closed for its lock-delay. A release frees at once.
    if (reason !== "released" && l.lockDelayMs > 0) {
      const endedAt = reason === "expired" ? l.expiresAt : log.now;
      delayUntil = Math.max(delayUntil, endedAt + l.lockDelayMs);
    }
  }
  return {
    ...s,
    holders: s.holders.filter((l) => !gone.has(l)),
    delayUntil: delayUntil > log.now ? delayUntil : 0,
  };
}

function replaceHolder(s: LockState, old: LeaseRecord, next: LeaseRecord): LockState {
  return { ...s, holders: s.holders.map((l) => (l === old ? next : l)) };
}

/**
 * Why `req` cannot be granted now, said precisely: a lock-delay, holders it does not fit next to, or (when it
 * would fit) waiters queued ahead of it. `lock_held` is never said of a lock without holders.
 */
function busy(
  s: LockState,
  req: { readonly mode: LockMode; readonly permits: number },
  now: number,
  queued: { leaseId: string; position: number; ahead: readonly Waiter[] } | null,
): Busy {
  const ahead = queued?.ahead ?? s.queue.filter((w) => isBlocking(w, now));
  const firstExpiry = Math.min(...s.holders.map((l) => l.expiresAt));
  let code: Busy["code"];
  let freeAt: number;
  if (now < s.delayUntil) {
    code = "lock_delay";
    freeAt = s.delayUntil;
  } else if (!fitsHolders(s, req)) {
    code = "lock_held";
    freeAt = firstExpiry;
  } else {
    code = "waiters_ahead";
    // The waiters ahead are served first; at the latest when the holders' leases or their waits end.
    freeAt = Math.min(firstExpiry, ...ahead.map((w) => (isLive(w, now) ? w.waitUntil : w.reserveUntil) + 1));
  }
  return {
    kind: "rejected",
    code,
    retryAfterMs: Number.isFinite(freeAt) ? Math.max(0, freeAt - now) : REPOLL_RESERVE_MS,
    position: queued?.position ?? null,
    leaseId: queued?.leaseId ?? null,
    holders: s.holders.slice(0, MAX_HOLDERS_IN_PROBLEM).map(holderView),
    holderCount: s.holders.length,
  };
}

function assertNever(x: never): never {
  throw new Error(`unhandled command ${JSON.stringify(x)}`);
}
