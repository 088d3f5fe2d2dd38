/**
 * The run as the server told it, rebuilt from the proxy's log: per lock, every lease with the bounds the log
 * proves on its start and its end, and every acquire request with what it can have done at the server. The
 * safety checks (check.ts) and the liveness check (liveness.ts) both read this; neither trusts what a client
 * believed. Times are this machine's clock, which workerd shares: a grant's `expiresAt - ttlMs` is exact.
 */
import type { LockMode, Problem } from "../client/src/protocol.ts";
import { type Exchange, SERVER_DOWN } from "./proxy.ts";

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
  /** When a release that freed it was sent: a lower bound on when it ended. */
  releasedAt: number;
  /** When the first answer arrived that proves it had ended (sent after its grant): an upper bound. */
  provenEndedBy: number;
  /** The latest expiry a renew the log has no answer to can have set (its cut-off time + TTL). */
  unansweredRenewUntil: number;
}

/** The lease ended no earlier than this: for safety checks. */
export function endLower(l: LeaseSpan): number {
  return Math.min(l.lastExpiry, l.releasedAt);
}

/** The lease ended no later than this: for liveness checks. */
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

export interface History {
  /** Every acquire, renew and release exchange, in the order they were sent. */
  readonly exchanges: Exchange[];
  readonly locks: Map<string, LockHistory>;
  /** Same token answered for two lease ids (or locks): a broken token. */
  readonly tokenConflicts: string[];
  /** Tokens an acquire answer gave each leaseId (per lock). */
  readonly tokensOfLeaseId: Map<string, Set<number>>;
}

/** Whether an exchange got no answer from a server that may have acted on it. */
export function unanswered(ex: Exchange): boolean {
  return (ex.status === null && ex.upstreamError !== SERVER_DOWN) || (ex.status !== null && ex.status >= 500);
}

export function rebuildHistory(exchanges: readonly Exchange[]): History {
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
    };
    if (span.leaseId !== l.leaseId) {
      tokenConflicts.push(`${route.name}: token ${l.token} belongs to ${span.leaseId} and ${l.leaseId}`);
    }
    if (route.op === "acquire") {
      span.start = Math.min(span.start, l.expiresAt - l.ttlMs);
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
    if (route.op === "release" && ex.status === 200 && body.released === true && body.holdCount === 0) {
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
  return { exchanges: sorted, locks, tokenConflicts, tokensOfLeaseId };
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
  if (ex.status === null && ex.upstreamError === SERVER_DOWN) fate = "never-sent";
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
