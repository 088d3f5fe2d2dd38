/**
 * The freed-on-disconnect report: for each lease a session held when its holder was killed, its connection
 * cut (reset or silent) or its session closed, the time from that instant to the next grant of the lock to
 * a request that was already waiting then and that only this lease kept out. A report, not a check: how soon
 * the server hears of a dead connection is the platform's business (a silent cut is heard of only by the
 * lease's TTL or the session's silence limit), and the liveness check must not guess it (liveness.ts).
 */
import { endUpper, type History, type LeaseSpan, type LockHistory, type SessionLife } from "./history.ts";
import { fits, type Occupant } from "./liveness.ts";

/** A client the orchestrator SIGKILLed, from plan.jsonl. */
export interface KillRecord {
  kind: "kill";
  at: number;
  /** The client's name (`client-<id>.<incarnation>`), which its session frames carry as `owner`. */
  client: string;
  role: string;
}

export const DISCONNECT_CAUSES = ["kill", "cut (reset)", "cut (silent)", "close"] as const;
export type DisconnectCause = (typeof DISCONNECT_CAUSES)[number];

export interface DisconnectStats {
  /** Session leases held at the instant of a disconnect. */
  held: number;
  /** Of those, the ones a waiting request was kept out by only them, so that the time to its grant says something. */
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
      const grantedAt = nextGrantFor(lock, leases, l, e.at);
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
 * The first grant after `at` to a request that had arrived by `at` (so it waited through the instant) and
 * that fitted next to every other lease that can still have held then: it waited for `gone` alone.
 */
function nextGrantFor(
  lock: LockHistory,
  leases: readonly LeaseSpan[],
  gone: LeaseSpan,
  at: number,
): number | null {
  const others: Occupant[] = leases
    .filter((l) => l !== gone && l.start <= at && endUpper(l) > at)
    .map((l) => ({ from: l.start, to: endUpper(l), mode: l.mode, permits: l.permits }));
  let first: number | null = null;
  for (const call of lock.acquires) {
    const lease = call.lease;
    if (call.fate !== "granted" || lease === null || lease.token === gone.token) continue;
    const grantedAt = lease.expiresAt - lease.ttlMs;
    const arrivedAt = Math.max(call.ex.sentAt, lease.expiresAt - (lease.validForMs ?? lease.ttlMs));
    if (grantedAt <= at || arrivedAt > at) continue;
    if (!fits(lock, call, others)) continue;
    if (first === null || grantedAt < first) first = grantedAt;
  }
  return first;
}

/** The nearest-rank percentile of ascending values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] as number;
}
