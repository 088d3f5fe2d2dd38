/**
 * The freed-on-disconnect report: for each lease a session held when its holder was killed, its connection
 * cut (reset or silent) or its session closed, while someone waited for it, the time from that instant to
 * the first grant of the lock that proves the lease gone. A report, not a check: how soon the server hears
 * of a dead connection is the platform's business (a silent cut is heard of only through the lease's TTL
 * or the session's silence limit), and the liveness check must not guess it (liveness.ts).
 */
import type { ClientRole } from "./client-context.ts";
import {
  endLower,
  endUpper,
  type History,
  type LeaseSpan,
  type LockHistory,
  type SessionLife,
} from "./history.ts";
import { fits, type Occupant } from "./liveness.ts";

/** A client the orchestrator SIGKILLed, from plan.jsonl. */
export interface KillRecord {
  kind: "kill";
  at: number;
  /** The client's name (`client-<id>.<incarnation>`), which its session frames carry as `owner`. */
  client: string;
  role: ClientRole;
}

export const DISCONNECT_CAUSES = ["kill", "cut (reset)", "cut (silent)", "close"] as const;
export type DisconnectCause = (typeof DISCONNECT_CAUSES)[number];

export interface DisconnectStats {
  /** Session leases held at the instant of a disconnect. */
  held: number;
  /** Of those, the ones a request in flight at the instant waited for alone: the time to free them says something. */
  measured: number;
  /** Of the measured, granted before the lease's own expiry: freed by the disconnect, not by the TTL. */
  beforeTtl: number;
  p50Ms: number | null;
  p90Ms: number | null;
  maxMs: number | null;
  /** Every measured time, ascending. */
  samplesMs: number[];
}

export type DisconnectReport = Partial<Record<DisconnectCause, DisconnectStats>>;

interface Disconnect {
  cause: DisconnectCause;
  at: number;
  session: SessionLife;
}

export function reportDisconnects(history: History, kills: readonly KillRecord[]): DisconnectReport {
  const events: Disconnect[] = [];
  for (const session of history.sessions.values()) {
    if (session.cut !== null) {
      events.push({ cause: `cut (${session.cut.mode})`, at: session.cut.at, session });
    } else if (session.end?.endedBy === "client-close") {
      events.push({ cause: "close", at: session.end.endedAt, session });
    }
  }
  for (const kill of kills) {
    for (const session of history.sessions.values()) {
      // A session already cut is out of the dead process's hands: the cut is its disconnect.
      const alive = session.openedAt <= kill.at && (session.end === null || session.end.endedAt >= kill.at);
      if (session.owner === kill.client && alive) events.push({ cause: "kill", at: kill.at, session });
    }
  }
  const samples = new Map<DisconnectCause, { held: number; times: number[]; beforeTtl: number }>();
  for (const e of events) {
    const lock = history.locks.get(e.session.name);
    if (lock === undefined) continue;
    const leases = [...lock.leases.values()];
    for (const l of leases) {
      // Held at the instant by everything but the disconnect itself: granted before it, neither expired
      // nor released by then.
      if (l.session !== e.session.id || l.start > e.at || Math.min(l.lastExpiry, l.releasedAt) <= e.at) {
        continue;
      }
      const s = samples.get(e.cause) ?? { held: 0, times: [], beforeTtl: 0 };
      samples.set(e.cause, s);
      s.held++;
      const grantedAt = freedAt(lock, leases, l, e.at);
      if (grantedAt === null) continue;
      s.times.push(grantedAt - e.at);
      if (grantedAt < l.lastExpiry) s.beforeTtl++;
    }
  }
  const report: DisconnectReport = {};
  for (const cause of DISCONNECT_CAUSES) {
    const s = samples.get(cause);
    if (s === undefined) continue;
    const sorted = [...s.times].sort((a, b) => a - b);
    report[cause] = {
      held: s.held,
      measured: sorted.length,
      beforeTtl: s.beforeTtl,
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      maxMs: sorted.at(-1) ?? null,
      samplesMs: sorted,
    };
  }
  return report;
}

/**
 * When the lock was provably free of `gone`, if someone waited for it alone: the first grant after `at` that
 * could not have been made while `gone` held (it does not fit next to `gone` and the leases that certainly
 * held then), provided a request in flight at `at` fitted next to every other lease that may still have
 * held then but not next to `gone`. Null when nobody waited for `gone` alone.
 */
function freedAt(
  lock: LockHistory,
  leases: readonly LeaseSpan[],
  gone: LeaseSpan,
  at: number,
): number | null {
  const holding = (t: number, end: (l: LeaseSpan) => number, self?: LeaseSpan): Occupant[] =>
    leases
      .filter((l) => l !== gone && l !== self && l.start <= t && end(l) > t)
      .map((l) => ({ from: l.start, to: end(l), mode: l.mode, permits: l.permits }));
  const goneOccupant: Occupant = {
    from: gone.start,
    to: gone.lastExpiry,
    mode: gone.mode,
    permits: gone.permits,
  };
  const waited = lock.acquires.some((c) => {
    if (c.waitMs === 0 || c.fate === "never-sent" || c.ex.sentAt > at) return false;
    const until = c.lease === null ? c.ex.answeredAt : c.lease.expiresAt - c.lease.ttlMs;
    if (until < at) return false;
    const mayHold = holding(at, endUpper, c.lease === null ? undefined : lock.leases.get(c.lease.token));
    return fits(lock, c, mayHold) && !fits(lock, c, [...mayHold, goneOccupant]);
  });
  if (!waited) return null;
  let first: number | null = null;
  for (const l of leases) {
    if (l === gone || l.start < at || (first !== null && l.start >= first)) continue;
    if (!fits(lock, l, [...holding(l.start, endLower, l), goneOccupant])) first = l.start;
  }
  return first;
}

/** The nearest-rank percentile of ascending values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] as number;
}
