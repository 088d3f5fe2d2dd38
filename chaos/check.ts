/**
 * The checks run after a chaos run, from the logs alone (so a run can be re-checked later with
 * `node chaos/run.ts --check <dir>`). Leases are rebuilt from the proxy's log, which saw every answer the server
 * gave, dropped or not; times are this machine's clock, which workerd shares. Every check is built to have no
 * false positives: a lease's start is exact (`expiresAt - ttlMs`), and its end is a lower bound (the last
 * `expiresAt` the server reported, or when a successful release was sent, whichever is first).
 */
import type { Exchange } from "./proxy.ts";

export interface Violation {
  readonly check: string;
  readonly detail: string;
}

export interface ClientEvent {
  ev: string;
  at: number;
  client: string;
  [k: string]: unknown;
}

export interface StoreWrite {
  kind: "store-write";
  at: number;
  resource: string;
  token: number;
  leaseId: string;
  writer: string;
  late: boolean;
  accepted: boolean;
  highestBefore: number;
}

export interface RestartCheck {
  at: number;
  name: string;
  lastTokenAfter: number;
  maxTokenBefore: number;
}

export interface EndCheck {
  name: string;
  held: boolean;
  waiters: number;
  lastToken: number;
}

export interface CheckInput {
  exchanges: Exchange[];
  storeWrites: StoreWrite[];
  clientEvents: ClientEvent[];
  restartChecks: RestartCheck[];
  endChecks: EndCheck[];
}

interface LeaseSpan {
  name: string;
  token: number;
  leaseId: string;
  start: number;
  lastExpiry: number;
  releasedAt: number;
}

export interface CheckReport {
  violations: Violation[];
  counts: Record<string, number>;
}

const ROUTE = /^\/v1\/locks\/([^/]+)\/(acquire|renew|release)$/;

interface LeaseBody {
  leaseId: string;
  token: number;
  expiresAt: number;
  ttlMs: number;
}

export function checkRun(input: CheckInput): CheckReport {
  const violations: Violation[] = [];
  const fail = (check: string, detail: string): void => {
    violations.push({ check, detail });
  };
  const counts: Record<string, number> = {};
  const bump = (k: string, n = 1): void => {
    counts[k] = (counts[k] ?? 0) + n;
  };

  // Leases as the server reported them.
  /** By `name#token`: tokens are per lock. */
  const leases = new Map<string, LeaseSpan>();
  const tokensOfLeaseId = new Map<string, Set<number>>();
  const exchanges = [...input.exchanges].sort((a, b) => a.sentAt - b.sentAt || a.id - b.id);
  for (const ex of exchanges) {
    const m = ROUTE.exec(ex.path.split("?")[0] ?? "");
    if (m === null) continue;
    const name = decodeURIComponent(m[1] as string);
    const op = m[2] as string;
    if (ex.dropped) bump(`dropped ${op} responses`);
    if (ex.upstreamError !== null) bump(`${op} requests failed by a down or restarting server`);
    if (ex.status === 503) bump(`${op} answered 503`);
    if (ex.status === 500)
      fail("no-internal-errors", `${op} on ${name} answered 500: ${JSON.stringify(ex.response)}`);
    const req = ex.request as { leaseId?: string };
    if (ex.status !== 200) continue;
    if (op === "acquire" || op === "renew") {
      const l = ex.response as LeaseBody;
      if (op === "acquire") bump("grant answers (incl. retries)");
      if (l.leaseId !== req.leaseId) {
        fail(
          "lease-id-echo",
          `${op} with leaseId ${req.leaseId} answered lease ${l.leaseId} (token ${l.token})`,
        );
      }
      const span = leases.get(`${name}#${l.token}`) ?? {
        name,
        token: l.token,
        leaseId: l.leaseId,
        start: Number.POSITIVE_INFINITY,
        lastExpiry: 0,
        releasedAt: Number.POSITIVE_INFINITY,
      };
      if (span.leaseId !== l.leaseId || span.name !== name) {
        fail(
          "token-unique",
          `token ${l.token} belongs to ${span.leaseId}@${span.name} and ${l.leaseId}@${name}`,
        );
      }
      if (op === "acquire") span.start = Math.min(span.start, l.expiresAt - l.ttlMs);
      span.lastExpiry = Math.max(span.lastExpiry, l.expiresAt);
      leases.set(`${name}#${l.token}`, span);
      if (op === "acquire") {
        const set = tokensOfLeaseId.get(l.leaseId) ?? new Set<number>();
        set.add(l.token);
        tokensOfLeaseId.set(l.leaseId, set);
      }
    } else if (op === "release") {
      const r = ex.response as { released?: boolean; holdCount?: number };
      const token = [...(tokensOfLeaseId.get(req.leaseId ?? "") ?? [])][0];
      if (r.released === true && r.holdCount === 0 && token !== undefined) {
        const span = leases.get(`${name}#${token}`);
        if (span !== undefined) span.releasedAt = Math.min(span.releasedAt, ex.sentAt);
      }
    }
  }
  bump("leases granted", leases.size);

  // Same leaseId → same token: a retried acquire never yields a second lease.
  for (const [leaseId, tokens] of tokensOfLeaseId) {
    if (tokens.size > 1)
      fail("no-double-grant", `leaseId ${leaseId} was granted tokens ${[...tokens].join(", ")}`);
  }

  // Mutual exclusion and token order, per lock.
  const byName = new Map<string, LeaseSpan[]>();
  for (const l of leases.values()) byName.set(l.name, [...(byName.get(l.name) ?? []), l]);
  for (const [name, spans] of byName) {
    spans.sort((a, b) => a.token - b.token);
    let latestEnd: LeaseSpan | null = null;
    let latestStart: LeaseSpan | null = null;
    for (const b of spans) {
      if (latestEnd !== null && b.start < end(latestEnd)) {
        fail(
          "mutual-exclusion",
          `${name}: token ${b.token} granted at ${b.start} while token ${latestEnd.token} (granted ${latestEnd.start}) ` +
            `was live until at least ${end(latestEnd)} (expiry ${latestEnd.lastExpiry}, release sent ${latestEnd.releasedAt})`,
        );
      }
      if (latestStart !== null && b.start < latestStart.start) {
        fail(
          "tokens-increase",
          `${name}: token ${b.token} granted at ${b.start}, before token ${latestStart.token} at ${latestStart.start}`,
        );
      }
      if (latestEnd === null || end(b) > end(latestEnd)) latestEnd = b;
      if (latestStart === null || b.start > latestStart.start) latestStart = b;
    }
  }

  // A retry with a leaseId that was granted gets that lease back (or lease_ended once it is over), never a queue place.
  const granted = new Map<string, { token: number; answeredAt: number }>();
  for (const ex of exchanges) {
    const m = ROUTE.exec(ex.path);
    if (m === null || m[2] !== "acquire") continue;
    const leaseId = (ex.request as { leaseId?: string }).leaseId ?? "";
    const before = granted.get(leaseId);
    if (before !== undefined && ex.sentAt > before.answeredAt && ex.status !== null && ex.status !== 503) {
      const body = ex.response as { token?: number; code?: string };
      const same = ex.status === 200 && body.token === before.token;
      if (!same && body.code !== "lease_ended") {
        fail(
          "retry-keeps-lease",
          `leaseId ${leaseId} (token ${before.token}) retried and got ${ex.status} ${JSON.stringify(body)}`,
        );
      }
      if (ex.status !== 200) bump("retries after a grant answered lease_ended");
      else bump("retries after a grant answered the same lease");
    }
    if (ex.status === 200 && before === undefined) {
      granted.set(leaseId, { token: (ex.response as LeaseBody).token, answeredAt: ex.answeredAt });
    }
  }

  // The fence: the store never accepts a lower token; writes of a live holder are never fenced; late writes
  // that arrive after a newer holder's write are refused.
  const highest = new Map<string, number>();
  for (const w of input.storeWrites) {
    const h = highest.get(w.resource) ?? 0;
    if (w.accepted && w.token < h)
      fail("fence", `store accepted token ${w.token} on ${w.resource} after ${h}`);
    if (w.accepted) highest.set(w.resource, Math.max(h, w.token));
  }
  for (const e of input.clientEvents) {
    if (e.ev === "stall") bump("stalls injected");
    if (e.ev === "retry") bump(`client retries (${String(e.what)})`);
    if (e.ev === "crash") fail("client-error", `${e.client}: ${String(e.error)}`);
    if (e.ev !== "write") continue;
    bump(e.late ? "late writes" : "writes in lease");
    const storeAt = Number(e.storeAt);
    if (e.late) {
      if (e.accepted) bump("late writes accepted (no newer holder had written yet)");
      else bump("late writes refused by the fence");
      if (e.accepted && Number(e.highest) > Number(e.token)) {
        fail("fence", `late write of token ${e.token} accepted though ${e.highest} was seen`);
      }
    } else if (!e.accepted) {
      if (storeAt < Number(e.heldUntil)) {
        fail(
          "no-double-holder",
          `${e.client} (token ${e.token} on ${e.name}, live until ${e.heldUntil}) was fenced at ${storeAt} by token ${e.highest}`,
        );
      } else {
        bump("in-lease writes fenced after arriving past expiry (slow machine)");
      }
    }
  }

  // Tokens survive restarts.
  for (const r of input.restartChecks) {
    bump("restart token checks");
    if (r.lastTokenAfter < r.maxTokenBefore) {
      fail(
        "tokens-survive-restart",
        `${r.name}: lastToken ${r.lastTokenAfter} after a restart, ${r.maxTokenBefore} issued before`,
      );
    }
  }
  // Every lock ends free once the clients stop and every deadline has passed.
  for (const e of input.endChecks) {
    if (e.held || e.waiters > 0)
      fail("ends-free", `${e.name}: held=${e.held} waiters=${e.waiters} at the end`);
    const maxToken = Math.max(0, ...(byName.get(e.name) ?? []).map((l) => l.token));
    if (e.lastToken < maxToken)
      fail("tokens-survive-restart", `${e.name}: final lastToken ${e.lastToken} < ${maxToken}`);
  }
  return { violations, counts };
}

function end(l: LeaseSpan): number {
  return Math.min(l.lastExpiry, l.releasedAt);
}
