/**
 * The run as the server told it, rebuilt from the proxy's log: per lock, every lease with the bounds the log
 * proves on its start and its end, and every acquire request with what it can have done at the server; per
 * session, who used it and the earliest instant the server can have seen it end. The safety checks
 * (check.ts), the liveness check (liveness.ts) and the disconnect report (disconnects.ts) read this; none
 * trusts what a client believed. Times are this machine's clock, which workerd shares.
 */
import { type LockMode, type Problem, SESSION_TIMEOUT_MS } from "../client/src/protocol.ts";
import { type Exchange, neverSent } from "./proxy.ts";
import type { PushRecord, SessionRecord } from "./session-relay.ts";

const ROUTE = /^\/v1\/locks\/([^/]+)\/(acquire|renew|release)$/;

export type Op = "acquire" | "renew" | "release";

/** The lock and operation an exchange is about, or null for other routes (GET, health). */
export function routeOf(ex: Exchange): { name: string; op: Op } | null {
  const m = ROUTE.exec(ex.path.split("?")[0] ?? "");
  return m === null ? null : { name: decodeURIComponent(m[1] as string), op: m[2] as Op };
}

/** What the server answers for a lease (the subset the checks read). */
export interface LeaseBody {
  leaseId: string;
  token: number;
  expiresAt: number;
  ttlMs: number;
  validForMs?: number;
  mode?: LockMode;
  permits?: number;
  limit?: number;
}

export interface LeaseSpan {
  readonly name: string;
  readonly token: number;
  readonly leaseId: string;
  mode: LockMode;
  permits: number;
  /** The TTL of the latest answer: what a renew without `ttlMs` renews for. */
  ttlMs: number;
  /** The grant instant by the server's clock (`expiresAt - ttlMs` of its first grant answer): exact. */
  start: number;
  /** The latest `expiresAt` any answer reported. */
  lastExpiry: number;
  /**
   * When a release that freed it, or may have (its answer was cut off), was sent: a lower bound on when it
   * ended.
   */
  releasedAt: number;
  /** When the first answer arrived that proves it had ended (sent after its grant): an upper bound. */
  provenEndedBy: number;
  /** The latest expiry a renew the log has no answer to can have set (its cut-off time + TTL). */
  unansweredRenewUntil: number;
  /** The session it was granted over (the proxy's number), or null for HTTP. */
  session: number | null;
  /**
   * For a session's lease: the earliest instant the server can have seen its session end (which ends the
   * lease), never before the grant; +∞ otherwise.
   */
  sessionEndLower: number;
}

/**
 * The lease ended no earlier than this: for safety checks. A session's lease ends when the server sees its
 * session end, which can be before its TTL; so the earliest instant the server can have seen that counts.
 */
export function endLower(l: LeaseSpan): number {
  return Math.min(l.lastExpiry, l.releasedAt, l.sessionEndLower);
}

/**
 * The lease ended no later than this: for liveness checks. A session's close ends it sooner, but no log
 * says when the server saw the close, so its expiry (and what proves it over) bounds it, as over HTTP.
 */
export function endUpper(l: LeaseSpan): number {
  return Math.min(l.provenEndedBy, Math.max(l.lastExpiry, l.unansweredRenewUntil));
}

/**
 * What an acquire request did at the server, as far as the log tells: `granted` (200), `queued` (a 409 with
 * `position`: it waited its `waitMs` and was not granted), `refused` (any other answer: never queued, or
 * cancelled), `lost` (no answer: cut by a restart, or a 5xx; it may have been queued or granted), `never-sent`
 * (the proxy had no server to send it to: it did nothing).
 */
export type AcquireFate = "granted" | "queued" | "refused" | "lost" | "never-sent";

export interface AcquireCall {
  readonly ex: Exchange;
  readonly name: string;
  /** The request's leaseId, or the one its answer names, or `?<exchange id>` when nobody learned it. */
  readonly leaseId: string;
  readonly waitMs: number;
  readonly repoll: boolean;
  readonly mode: LockMode;
  readonly permits: number;
  readonly limit: number;
  readonly ttlMs: number;
  readonly lockDelayMs: number;
  readonly fate: AcquireFate;
  readonly lease: LeaseBody | null;
  readonly problem: Problem | null;
}

export interface LockHistory {
  readonly name: string;
  /** Visible leases by token. */
  readonly leases: Map<number, LeaseSpan>;
  readonly acquires: AcquireCall[];
  /** The lock's limit as requests stated it (1 for mutexes and read-write locks). */
  limit: number;
  kind: "mutex" | "rwlock" | "semaphore";
}

/** A session as the proxy saw it. */
export interface SessionLife {
  readonly id: number;
  readonly name: string;
  /** The `owner` its acquire frames named (the chaos client's name), or null if it sent none. */
  owner: string | null;
  openedAt: number;
  /** How it ended, or null when the log has no end (the run was cut short). */
  end: Extract<SessionRecord, { event: "end" }> | null;
  /** When and how the proxy cut it, if it did. */
  cut: Extract<SessionRecord, { event: "cut" }> | null;
  /** The earliest instant the server can have seen it end (+∞ with no end in the log). */
  endLower: number;
}

/**
 * The earliest instant the server can have seen a session end. It learns of an end from the client only
 * through the proxy, so not before the proxy passed a close frame, FIN or reset on; by itself (it closes a
 * session silent for SESSION_TIMEOUT_MS) not before that long after the last frame the proxy passed on; and
 * a restart ends nothing before the proxy sees the old server's connection end. See chaos/README.md.
 */
export function sessionEndLower(end: Extract<SessionRecord, { event: "end" }>): number {
  return Math.min(
    end.endSentUpstreamAt ?? Number.POSITIVE_INFINITY,
    end.serverEndedAt ?? Number.POSITIVE_INFINITY,
    end.lastForwardedAt + SESSION_TIMEOUT_MS,
  );
}

export interface History {
  /** Every acquire, renew and release exchange (HTTP or session frame), in the order they were sent. */
  readonly exchanges: Exchange[];
  readonly sessions: Map<number, SessionLife>;
  readonly locks: Map<string, LockHistory>;
  /** Same token answered for two lease ids (or locks): a broken token. */
  readonly tokenConflicts: string[];
  /** Tokens an acquire answer gave each leaseId (per lock). */
  readonly tokensOfLeaseId: Map<string, Set<number>>;
}

/** Whether an exchange got no answer from a server that may have acted on it. */
export function unanswered(ex: Exchange): boolean {
  return (ex.status === null && !neverSent(ex)) || (ex.status !== null && ex.status >= 500);
}

export function rebuildHistory(
  exchanges: readonly Exchange[],
  sessionLog: readonly (SessionRecord | PushRecord)[] = [],
): History {
  const sorted = exchanges
    .filter((ex) => routeOf(ex) !== null)
    .sort((a, b) => a.sentAt - b.sentAt || a.id - b.id);
  const locks = new Map<string, LockHistory>();
  const lockOf = (name: string): LockHistory => {
    let h = locks.get(name);
    if (h === undefined) {
      h = { name, leases: new Map(), acquires: [], limit: 1, kind: "mutex" };
      locks.set(name, h);
    }
    return h;
  };
  const tokenConflicts: string[] = [];
  const tokensOfLeaseId = new Map<string, Set<number>>();
  const key = (name: string, leaseId: string) => `${name}\n${leaseId}`;
  const sessions = sessionsOf(sorted, sessionLog);

  // Grants and renewals first: every lease with its start and the expiries the server reported.
  for (const ex of sorted) {
    const route = routeOf(ex);
    if (route === null) continue;
    const h = lockOf(route.name);
    if (route.op === "acquire") {
      const call = acquireCall(ex, route.name);
      h.acquires.push(call);
      if (call.limit > 1) h.limit = Math.max(h.limit, call.limit);
    }
    if (ex.status !== 200 || route.op === "release") continue;
    const l = ex.response as LeaseBody;
    const span = h.leases.get(l.token) ?? {
      name: route.name,
      token: l.token,
      leaseId: l.leaseId,
      mode: l.mode ?? "exclusive",
      permits: l.permits ?? 1,
      ttlMs: l.ttlMs,
      start: Number.POSITIVE_INFINITY,
      lastExpiry: 0,
      releasedAt: Number.POSITIVE_INFINITY,
      provenEndedBy: Number.POSITIVE_INFINITY,
      unansweredRenewUntil: 0,
      session: null,
      sessionEndLower: Number.POSITIVE_INFINITY,
    };
    if (span.leaseId !== l.leaseId) {
      tokenConflicts.push(`${route.name}: token ${l.token} belongs to ${span.leaseId} and ${l.leaseId}`);
    }
    if (route.op === "acquire") {
      span.start = Math.min(span.start, l.expiresAt - l.ttlMs);
      if (ex.session !== undefined) span.session = ex.session;
      const set = tokensOfLeaseId.get(key(route.name, l.leaseId)) ?? new Set<number>();
      set.add(l.token);
      tokensOfLeaseId.set(key(route.name, l.leaseId), set);
    }
    if (l.expiresAt >= span.lastExpiry) span.ttlMs = l.ttlMs;
    span.lastExpiry = Math.max(span.lastExpiry, l.expiresAt);
    h.leases.set(l.token, span);
  }
  for (const h of locks.values()) {
    if (h.limit > 1) h.kind = "semaphore";
    else if (h.acquires.some((a) => a.mode === "shared")) h.kind = "rwlock";
  }

  // Then what ended them, or may have kept them longer: releases, refusals, renews without an answer.
  for (const ex of sorted) {
    const route = routeOf(ex);
    if (route === null) continue;
    const req = (ex.request ?? {}) as { leaseId?: string; ttlMs?: number };
    if (req.leaseId === undefined) continue;
    const token = [...(tokensOfLeaseId.get(key(route.name, req.leaseId)) ?? [])][0];
    const span = token === undefined ? undefined : locks.get(route.name)?.leases.get(token);
    if (span === undefined) continue;
    const body = (ex.response ?? {}) as { released?: boolean; holdCount?: number; code?: string };
    const freed = ex.status === 200 && body.released === true && body.holdCount === 0;
    if (route.op === "release" && (freed || unanswered(ex))) {
      span.releasedAt = Math.min(span.releasedAt, ex.sentAt);
    }
    // Sent after the grant, so the server answered it after the grant: the lease was over by the answer.
    const endedBefore =
      ex.sentAt >= span.start &&
      ((route.op === "release" && ex.status === 200 && body.released === true) ||
        body.code === "not_held" ||
        body.code === "lease_ended");
    if (endedBefore) span.provenEndedBy = Math.min(span.provenEndedBy, ex.answeredAt);
    if (route.op === "renew" && unanswered(ex)) {
      const ttlMs = req.ttlMs ?? span.ttlMs;
      span.unansweredRenewUntil = Math.max(span.unansweredRenewUntil, ex.answeredAt + ttlMs);
    }
  }
  const spanOf = (name: string, leaseId: string): LeaseSpan | undefined => {
    const token = [...(tokensOfLeaseId.get(key(name, leaseId)) ?? [])][0];
    return token === undefined ? undefined : locks.get(name)?.leases.get(token);
  };
  for (const h of locks.values()) {
    for (const span of h.leases.values()) {
      const end = span.session === null ? undefined : sessions.get(span.session)?.endLower;
      if (end !== undefined) span.sessionEndLower = Math.max(span.start, end);
    }
  }
  // A pushed `lost` proves the lease had ended by the time the proxy read it.
  for (const r of sessionLog) {
    if (r.kind !== "push" || r.frame.type !== "lost") continue;
    const span = spanOf(r.name, String(r.frame.leaseId));
    if (span !== undefined) span.provenEndedBy = Math.min(span.provenEndedBy, r.at);
  }
  return { exchanges: sorted, sessions, locks, tokenConflicts, tokensOfLeaseId };
}

function sessionsOf(
  exchanges: readonly Exchange[],
  sessionLog: readonly (SessionRecord | PushRecord)[],
): Map<number, SessionLife> {
  const sessions = new Map<number, SessionLife>();
  for (const r of sessionLog) {
    if (r.kind !== "session" || r.event === "refused") continue;
    const life = sessions.get(r.session) ?? {
      id: r.session,
      name: r.name,
      owner: null,
      openedAt: r.at,
      end: null,
      cut: null,
      endLower: Number.POSITIVE_INFINITY,
    };
    if (r.event === "open") life.openedAt = r.at;
    if (r.event === "cut") life.cut = r;
    if (r.event === "end") {
      life.end = r;
      life.endLower = sessionEndLower(r);
    }
    sessions.set(r.session, life);
  }
  for (const ex of exchanges) {
    if (ex.session === undefined) continue;
    const life = sessions.get(ex.session);
    const owner = (ex.request as { owner?: unknown } | null)?.owner;
    if (life !== undefined && life.owner === null && typeof owner === "string") life.owner = owner;
  }
  return sessions;
}

function acquireCall(ex: Exchange, name: string): AcquireCall {
  const req = (ex.request ?? {}) as {
    leaseId?: string;
    waitMs?: number;
    repoll?: boolean;
    mode?: LockMode;
    permits?: number;
    limit?: number;
    ttlMs?: number;
    lockDelayMs?: number;
  };
  const lease = ex.status === 200 ? (ex.response as LeaseBody) : null;
  const problem = ex.status !== null && ex.status !== 200 ? (ex.response as Problem | null) : null;
  let fate: AcquireFate;
  if (neverSent(ex)) fate = "never-sent";
  else if (unanswered(ex)) fate = "lost";
  else if (lease !== null) fate = "granted";
  else if (problem?.position !== undefined) fate = "queued";
  else fate = "refused";
  return {
    ex,
    name,
    leaseId: req.leaseId ?? lease?.leaseId ?? problem?.leaseId ?? `?${ex.id}`,
    waitMs: req.waitMs ?? 0,
    repoll: req.repoll === true,
    mode: req.mode ?? "exclusive",
    permits: req.permits ?? 1,
    limit: req.limit ?? 1,
    ttlMs: req.ttlMs ?? 0,
    lockDelayMs: req.lockDelayMs ?? 0,
    fate,
    lease,
    problem,
  };
}
