/**
 * The liveness check (issue 9): the lock is work-conserving, so free capacity is never kept from a request
 * that is waiting for it now. From the proxy's log alone it finds the instants at which, provably, a waiting
 * request was open at the server, the lock had room for it, and no request that can have been ahead of it in
 * the queue was still waiting (or reserved); on a correct server such a stretch lasts only as long as the
 * server takes to act on an expiry. It is not a fairness check: who is granted first is not judged here.
 */
import { type LockMode, REPOLL_RESERVE_MS } from "../client/src/protocol.ts";
import type { Violation } from "./check.ts";
import {
  type AcquireCall,
  endUpper,
  type History,
  type LeaseSpan,
  type LockHistory,
  unanswered,
} from "./history.ts";

/**
 * Allowed on top of the server's slowest turnaround near an interval: timer and alarm precision (workerd
 * fires them a few ms late), the millisecond rounding of three processes' clock readings, and the stretch of
 * a stall before any request was in flight to measure it. See chaos/README.md ("Liveness check").
 */
export const LIVENESS_SLACK_MS = 50;
/** The requests whose turnaround measures the server's delay at an interval are those in flight this close to it. */
export const LOAD_WINDOW_MS = 1_000;

/** A lock's `lastToken` read directly from the server at `at` (after a restart, or at the end: +∞). */
export interface TokenReading {
  name: string;
  at: number;
  lastToken: number;
}

/** A stretch of time in which a lock provably kept free capacity from a waiting request. */
export interface FreeInterval {
  name: string;
  kind: LockHistory["kind"];
  from: number;
  to: number;
  /** The waiting requests it was kept from, by leaseId. */
  waiters: string[];
  /** The server's slowest turnaround of a request near it, plus LIVENESS_SLACK_MS. */
  toleranceMs: number;
}

export interface KindStats {
  /** Waiting requests whose certain waiting time was examined. */
  waits: number;
  /** Stretches of free capacity while one of them waited. */
  intervals: number;
  longestMs: number;
  totalMs: number;
}

export interface LivenessReport {
  violations: Violation[];
  byKind: Partial<Record<LockHistory["kind"], KindStats>>;
  /** The longest stretches, for the report. */
  longest: FreeInterval[];
}

/** Someone holding capacity during [from, to): a lease (mode null: a lease nobody saw, taking everything). */
export interface Occupant {
  from: number;
  to: number;
  mode: LockMode | null;
  permits: number;
}

/** A request that can have been waiting (or reserved) during [from, to), for a leaseId first sent at `firstSent`. */
interface WaitWindow {
  leaseId: string;
  firstSent: number;
  from: number;
  to: number;
}

/** A request that provably waited at the server during [from, to). `from` is also its latest possible arrival. */
interface Waiting {
  call: AcquireCall;
  from: number;
  to: number;
}

export function checkLiveness(history: History, readings: TokenReading[]): LivenessReport {
  const violations: Violation[] = [];
  const byKind: LivenessReport["byKind"] = {};
  const all: FreeInterval[] = [];
  const delays = serverDelays(history);
  for (const lock of history.locks.values()) {
    // Lock-delays keep a free lock closed on purpose; the harness asks for none, and this check models none.
    if (lock.acquires.some((a) => a.lockDelayMs > 0)) continue;
    const occupants = new Timeline(occupantsOf(lock, readings));
    const windows = new Timeline(waitWindowsOf(lock));
    const stats = byKind[lock.kind] ?? { waits: 0, intervals: 0, longestMs: 0, totalMs: 0 };
    byKind[lock.kind] = stats;
    const bad: { from: number; to: number; leaseId: string }[] = [];
    for (const w of waitingOf(lock)) {
      stats.waits++;
      const blockers = windows.overlapping(w.from, w.to).filter((x) => ahead(x, w.call.leaseId, w.from));
      for (const seg of freeSegments(
        lock,
        w.call,
        w.from,
        w.to,
        occupants.overlapping(w.from, w.to),
        blockers,
      )) {
        bad.push({ ...seg, leaseId: w.call.leaseId });
      }
    }
    for (const i of merge(bad)) {
      const interval: FreeInterval = {
        name: lock.name,
        kind: lock.kind,
        ...i,
        toleranceMs: delays.slowestNear(i.from, i.to) + LIVENESS_SLACK_MS,
      };
      all.push(interval);
      stats.intervals++;
      stats.longestMs = Math.max(stats.longestMs, i.to - i.from);
      stats.totalMs += i.to - i.from;
      if (i.to - i.from > interval.toleranceMs) {
        violations.push({
          check: "work-conserving",
          detail:
            `${lock.name}: free for ${i.to - i.from} ms (${i.from}–${i.to}, tolerance ${interval.toleranceMs} ms) ` +
            `while ${i.waiters.join(", ")} waited with nobody ahead`,
        });
      }
    }
    // A try-once that provably found room and nobody waiting at any instant it can have arrived is granted.
    for (const call of lock.acquires) {
      if (call.waitMs !== 0 || call.fate !== "refused" || call.problem?.position !== undefined) continue;
      if (call.problem?.code !== "lock_held" && call.problem?.code !== "waiters_ahead") continue;
      const { sentAt, answeredAt } = call.ex;
      const blockers = windows.overlapping(sentAt, answeredAt + 1).filter((x) => x.leaseId !== call.leaseId);
      const free = freeSegments(
        lock,
        call,
        sentAt,
        answeredAt + 1,
        occupants.overlapping(sentAt, answeredAt + 1),
        blockers,
      );
      if (free.length === 1 && free[0]?.from === sentAt && free[0].to === answeredAt + 1) {
        violations.push({
          check: "free-lock-refused",
          detail: `${lock.name}: try-once ${call.leaseId} (${sentAt}–${answeredAt}) got ${call.problem.code} with room and nobody waiting`,
        });
      }
    }
  }
  all.sort((a, b) => b.to - b.from - (a.to - a.from));
  return { violations, byKind, longest: all.slice(0, 10) };
}

/** Whether a wait window can belong to a request ahead of `leaseId`, which arrived no later than `arrivedBy`. */
function ahead(x: WaitWindow, leaseId: string, arrivedBy: number): boolean {
  // Queue order is the arrival of a leaseId's first request (a re-poll keeps it), which is after it was sent.
  return x.leaseId !== leaseId && x.firstSent <= arrivedBy;
}

/** The stretches within [from, to) in which `req` fits next to every possible occupant and no blocker waits. */
function freeSegments(
  lock: LockHistory,
  req: { mode: LockMode; permits: number },
  from: number,
  to: number,
  occupants: Occupant[],
  blockers: WaitWindow[],
): { from: number; to: number }[] {
  const points = new Set([from, to]);
  for (const o of [...occupants, ...blockers]) {
    if (o.from > from && o.from < to) points.add(o.from);
    if (o.to > from && o.to < to) points.add(o.to);
  }
  const sorted = [...points].sort((a, b) => a - b);
  const out: { from: number; to: number }[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const t = sorted[i] as number;
    const end = sorted[i + 1] as number;
    if (blockers.some((b) => b.from <= t && t < b.to)) continue;
    const holding = occupants.filter((o) => o.from <= t && t < o.to);
    if (!fits(lock, req, holding)) continue;
    const last = out.at(-1);
    if (last !== undefined && last.to === t) last.to = end;
    else out.push({ from: t, to: end });
  }
  return out;
}

/** The lock's compatibility rules: permits against the limit, or readers together and writers alone. */
export function fits(
  lock: LockHistory,
  req: { mode: LockMode; permits: number },
  holding: Occupant[],
): boolean {
  if (holding.some((o) => o.mode === null)) return false;
  if (lock.limit > 1) return holding.reduce((n, o) => n + o.permits, 0) + req.permits <= lock.limit;
  if (req.mode === "shared") return holding.every((o) => o.mode === "shared");
  return holding.length === 0;
}

/**
 * Every lease that can have held the lock, with the latest end the log allows. Leases nobody saw (granted
 * while a restart cut the answer, or to a waiter after it) show up as missing tokens: tokens are issued one
 * by one in grant order, so such a lease started after the visible lease before it, no later than the one
 * after it (or a `lastToken` reading), and, never renewed by a client that never learned of it, lasted at
 * most the longest TTL asked of this lock.
 */
function occupantsOf(lock: LockHistory, readings: TokenReading[]): Occupant[] {
  const visible = [...lock.leases.values()].sort((a, b) => a.token - b.token);
  const out: Occupant[] = visible.map((l) => ({
    from: l.start,
    to: endUpper(l),
    mode: l.mode,
    permits: l.permits,
  }));
  const mine = readings.filter((r) => r.name === lock.name);
  const lastToken = Math.max(visible.at(-1)?.token ?? 0, ...mine.map((r) => r.lastToken));
  const maxTtlMs = Math.max(
    lock.acquires.reduce((m, a) => Math.max(m, a.ttlMs), 0),
    visible.reduce((m, l) => Math.max(m, l.ttlMs), 0),
  );
  // The earliest start among visible leases from index i on (tokens are issued in grant order).
  const startsFrom = visible.map((l) => l.start);
  for (let i = startsFrom.length - 2; i >= 0; i--) {
    startsFrom[i] = Math.min(startsFrom[i] as number, startsFrom[i + 1] as number);
  }
  let i = 0;
  let startedAfter = Number.NEGATIVE_INFINITY;
  for (let token = 1; token <= lastToken; token++) {
    while (i < visible.length && (visible[i] as LeaseSpan).token < token) {
      startedAfter = Math.max(startedAfter, (visible[i] as LeaseSpan).start);
      i++;
    }
    if (visible[i]?.token === token) continue;
    const read = mine
      .filter((r) => r.lastToken >= token)
      .reduce((m, r) => Math.min(m, r.at), Number.POSITIVE_INFINITY);
    const startedBy = Math.min(startsFrom[i] ?? Number.POSITIVE_INFINITY, read);
    out.push({ from: startedAfter, to: startedBy + maxTtlMs, mode: null, permits: lock.limit });
  }
  return out;
}

/**
 * When each request can have been waiting or reserved at the server: from when it was sent until its grant,
 * its answer (plus REPOLL_RESERVE_MS if it promised a re-poll), or, with no answer, until its wait would have
 * run out had it arrived at the last moment (a waiter cut off by a restart stays queued).
 */
function waitWindowsOf(lock: LockHistory): WaitWindow[] {
  const firstSent = new Map<string, number>();
  for (const a of lock.acquires) {
    if (a.fate === "never-sent") continue;
    firstSent.set(a.leaseId, Math.min(firstSent.get(a.leaseId) ?? Number.POSITIVE_INFINITY, a.ex.sentAt));
  }
  const out: WaitWindow[] = [];
  for (const a of lock.acquires) {
    const { sentAt, answeredAt } = a.ex;
    const reserve = a.repoll ? REPOLL_RESERVE_MS : 0;
    let to: number;
    switch (a.fate) {
      case "never-sent":
        continue;
      case "granted":
        // Waiting until its grant; a grant from before this request (a retry collecting it) means no wait.
        to = (a.lease as { expiresAt: number }).expiresAt - (a.lease as { ttlMs: number }).ttlMs;
        break;
      case "queued":
        to = answeredAt + reserve;
        break;
      case "refused":
        // Never queued, unless it waited and then was cancelled or refused (then until its answer).
        if (a.waitMs === 0) continue;
        to = answeredAt;
        break;
      case "lost":
        to = answeredAt + a.waitMs + reserve;
        break;
      default:
        return assertNever(a.fate);
    }
    // Closed at both ends: a waiter still counts at the instant its wait ends.
    if (to >= sentAt)
      out.push({
        leaseId: a.leaseId,
        firstSent: firstSent.get(a.leaseId) as number,
        from: sentAt,
        to: to + 1,
      });
  }
  return out;
}

/**
 * The part of each waiting request's wait that is certain. A grant after a wait is exact on both ends (it
 * arrived at `expiresAt - validForMs` and was granted at `expiresAt - ttlMs`). A request answered "still
 * queued" after its whole `waitMs` arrived no earlier than it was sent and no later than `waitMs` before its
 * answer, so it waited at least from `answeredAt - waitMs` to `sentAt + waitMs`. Neither holds when another
 * request with its leaseId overlapped it (a re-poll replaces the parked request and restarts the wait), so
 * such requests are left out.
 */
function waitingOf(lock: LockHistory): Waiting[] {
  const byLeaseId = new Map<string, AcquireCall[]>();
  for (const a of lock.acquires) {
    const group = byLeaseId.get(a.leaseId) ?? [];
    group.push(a);
    byLeaseId.set(a.leaseId, group);
  }
  const out: Waiting[] = [];
  for (const a of lock.acquires) {
    if (a.waitMs === 0) continue;
    const { sentAt, answeredAt } = a.ex;
    const overlapped = (byLeaseId.get(a.leaseId) ?? []).some(
      (b) => b !== a && b.fate !== "never-sent" && b.ex.sentAt <= answeredAt && b.ex.answeredAt >= sentAt,
    );
    if (overlapped) continue;
    if (a.fate === "granted" && a.lease?.validForMs !== undefined && a.lease.validForMs > a.lease.ttlMs) {
      const grantedAt = a.lease.expiresAt - a.lease.ttlMs;
      const from = Math.max(sentAt, a.lease.expiresAt - a.lease.validForMs);
      if (grantedAt > from) out.push({ call: a, from, to: grantedAt });
    } else if (a.fate === "queued") {
      const from = answeredAt - a.waitMs;
      const to = sentAt + a.waitMs;
      if (to > from) out.push({ call: a, from, to });
    }
  }
  return out;
}

/**
 * How long the server took to turn each request around beyond the wait it was asked for: a round trip, less
 * the time a waiting request was legitimately parked (from its arrival to its grant, or its whole `waitMs`
 * for a 409 after waiting). A backlog in workerd or a starved machine delays an alarm, a wait's timer and the
 * requests in flight alike; a waiting request answered late shows a late timer directly.
 */
function serverDelays(history: History): { slowestNear(from: number, to: number): number } {
  const trips: { from: number; to: number; delayMs: number }[] = [];
  for (const ex of history.exchanges) {
    if (ex.status === null || unanswered(ex)) continue;
    const roundTrip = ex.answeredAt - ex.sentAt;
    const waitMs = (ex.request as { waitMs?: number } | null)?.waitMs ?? 0;
    const body = (ex.response ?? {}) as {
      position?: number;
      expiresAt?: number;
      ttlMs?: number;
      validForMs?: number;
    };
    let parkedMs = 0;
    if (ex.path.endsWith("/acquire") && waitMs > 0) {
      if (ex.status === 200 && body.validForMs !== undefined && body.ttlMs !== undefined) {
        parkedMs = Math.max(0, body.validForMs - body.ttlMs);
      } else if (body.position !== undefined) {
        parkedMs = waitMs;
      } else {
        continue; // cancelled or refused mid-wait: how long it was parked is unknown
      }
    }
    trips.push({ from: ex.sentAt, to: ex.answeredAt, delayMs: roundTrip - parkedMs });
  }
  const timeline = new Timeline(trips);
  return {
    slowestNear: (from, to) =>
      timeline
        .overlapping(from - LOAD_WINDOW_MS, to + LOAD_WINDOW_MS)
        .reduce((m, t) => Math.max(m, t.delayMs), 0),
  };
}

/** Intervals sorted by start, with the longest one known, to find those overlapping a stretch quickly. */
class Timeline<T extends { from: number; to: number }> {
  readonly #items: T[];
  readonly #longest: number;
  /** Items too long for the scan-back bound (a lease nobody saw at the end of the run). */
  readonly #long: T[];

  constructor(items: T[]) {
    const LONG_MS = 60_000;
    this.#items = items.filter((x) => x.to - x.from <= LONG_MS).sort((a, b) => a.from - b.from);
    this.#long = items.filter((x) => x.to - x.from > LONG_MS);
    this.#longest = this.#items.reduce((m, x) => Math.max(m, x.to - x.from), 0);
  }

  overlapping(from: number, to: number): T[] {
    const out = this.#long.filter((x) => x.from < to && x.to > from);
    for (let i = lowerBound(this.#items, from - this.#longest); i < this.#items.length; i++) {
      const x = this.#items[i] as T;
      if (x.from >= to) break;
      if (x.to > from) out.push(x);
    }
    return out;
  }
}

/** The first index whose `from` is not below `value`, in items sorted by `from`. */
function lowerBound(items: readonly { from: number }[], value: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((items[mid] as { from: number }).from < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Unites per-waiter stretches into per-lock intervals, keeping who waited in each. */
function merge(
  segments: { from: number; to: number; leaseId: string }[],
): { from: number; to: number; waiters: string[] }[] {
  const sorted = [...segments].sort((a, b) => a.from - b.from);
  const out: { from: number; to: number; waiters: string[] }[] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last !== undefined && s.from <= last.to) {
      last.to = Math.max(last.to, s.to);
      if (!last.waiters.includes(s.leaseId)) last.waiters.push(s.leaseId);
    } else {
      out.push({ from: s.from, to: s.to, waiters: [s.leaseId] });
    }
  }
  return out;
}

function assertNever(x: never): never {
  throw new Error(`unhandled ${String(x)}`);
}
