/**
 * The checks run after a chaos run, from the logs alone (so a run can be re-checked later with
 * `node chaos/run.ts --check <dir>`). Leases are rebuilt from the proxy's log (history.ts), which saw every
 * answer the server gave, dropped or not. The safety checks use what the log proves a lease held: its exact
 * start and a lower bound on its end; the liveness check (liveness.ts) uses an upper bound on its end. So
 * neither has false positives on a correct server.
 */
import type { LockMode } from "../client/src/protocol.ts";
import { type DisconnectReport, type KillRecord, reportDisconnects } from "./disconnects.ts";
import type { StoreAccess } from "./fenced-store.ts";
import { endLower, type History, type LeaseSpan, rebuildHistory, routeOf } from "./history.ts";
import { checkLiveness, type LivenessReport, type TokenReading } from "./liveness.ts";
import type { Exchange } from "./proxy.ts";
import type { PushRecord, SessionRecord } from "./session-relay.ts";

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

/** What the orchestrator did, from plan.jsonl: the kills (restarts are in `restartChecks`). */
export type PlanRecord = KillRecord;

export interface CheckInput {
  exchanges: Exchange[];
  /** The proxy's records of sessions' lives and of frames the server pushed. */
  sessionLog?: (SessionRecord | PushRecord)[];
  storeAccesses: StoreAccess[];
  clientEvents: ClientEvent[];
  restartChecks: RestartCheck[];
  endChecks: EndCheck[];
  plan?: PlanRecord[];
}

export interface CheckReport {
  violations: Violation[];
  counts: Record<string, number>;
  liveness: Omit<LivenessReport, "violations">;
  /** For session leases held at a kill, cut or close: the time until the lock went to a waiter. */
  freedOnDisconnect: DisconnectReport;
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

  const history = rebuildHistory(input.exchanges, input.sessionLog ?? []);
  for (const c of history.tokenConflicts) fail("token-unique", c);
  checkAnswers(history, fail, bump);
  checkSessions(input.sessionLog ?? [], fail, bump);
  for (const lock of history.locks.values()) {
    bump(`leases granted (${lock.kind})`, lock.leases.size);
    checkExclusion(lock.name, lock.limit, [...lock.leases.values()], fail);
  }
  // Same leaseId → same token: a retried acquire never yields a second lease.
  for (const [key, tokens] of history.tokensOfLeaseId) {
    if (tokens.size > 1) {
      fail(
        "no-double-grant",
        `leaseId ${key.replace("\n", ":")} was granted tokens ${[...tokens].join(", ")}`,
      );
    }
  }
  checkRetries(history, fail, bump);
  checkClients(input, history, fail, bump);

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
    const maxToken = [...(history.locks.get(e.name)?.leases.keys() ?? [])].reduce(
      (m, t) => Math.max(m, t),
      0,
    );
    if (e.lastToken < maxToken) {
      fail("tokens-survive-restart", `${e.name}: final lastToken ${e.lastToken} < ${maxToken}`);
    }
  }

  const readings: TokenReading[] = [
    ...input.restartChecks.map((r) => ({ name: r.name, at: r.at, lastToken: r.lastTokenAfter })),
    ...input.endChecks.map((e) => ({ name: e.name, at: Number.POSITIVE_INFINITY, lastToken: e.lastToken })),
  ];
  const { violations: idle, ...liveness } = checkLiveness(history, readings);
  violations.push(...idle);
  const freedOnDisconnect = reportDisconnects(history, input.plan ?? []);
  return { violations, counts, liveness, freedOnDisconnect };
}

type Fail = (check: string, detail: string) => void;
type Bump = (k: string, n?: number) => void;

/** Per answer: no 500s, ids echoed, grants of what was asked, and a `lock_held` only when someone holds. */
function checkAnswers(history: History, fail: Fail, bump: Bump): void {
  for (const ex of history.exchanges) {
    const { name, op } = routeOf(ex) as { name: string; op: string };
    if (ex.dropped) bump(`dropped ${op} responses`);
    if (ex.session !== undefined) {
      bump(`session ${op} frames`);
      if (ex.upstreamError !== null) bump(`session ${op} frames unanswered (${ex.upstreamError})`);
    } else if (ex.upstreamError !== null) {
      bump(`${op} requests failed by a down or restarting server`);
    }
    if (ex.status === 503) bump(`${op} answered 503`);
    if (ex.status === 500)
      fail("no-internal-errors", `${op} on ${name} answered 500: ${JSON.stringify(ex.response)}`);
    const req = (ex.request ?? {}) as { leaseId?: string; mode?: LockMode; permits?: number };
    const body = (ex.response ?? {}) as {
      leaseId?: string;
      token?: number;
      mode?: LockMode;
      permits?: number;
      code?: string;
      holderCount?: number;
      holders?: unknown[];
    };
    if (ex.status === 200 && op !== "release") {
      if (op === "acquire") bump("grant answers (incl. retries)");
      // A server-chosen leaseId (the request named none) is the one thing an answer may add.
      if (req.leaseId !== undefined && body.leaseId !== req.leaseId) {
        fail(
          "lease-id-echo",
          `${op} with leaseId ${req.leaseId} answered lease ${body.leaseId} (token ${body.token})`,
        );
      }
      if (
        op === "acquire" &&
        (body.mode !== (req.mode ?? "exclusive") || body.permits !== (req.permits ?? 1))
      ) {
        fail(
          "grant-matches-request",
          `${name}: asked ${req.mode ?? "exclusive"}×${req.permits ?? 1}, granted ${body.mode}×${body.permits} (token ${body.token})`,
        );
      }
    }
    if (ex.status === 409) bump(`409 answers: ${body.code}`);
    if (ex.status === 409 && body.code === "lock_held" && (body.holderCount ?? body.holders?.length) === 0) {
      fail("lock-held-names-holders", `${name}: ${op} answered lock_held with no holders`);
    }
  }
}

/**
 * Sessions' lives: how they ended, and one rule of the protocol the proxy can see for itself. A session cut
 * silently (a pulled cable) must be closed by the server once it has heard nothing for SESSION_TIMEOUT_MS;
 * the proxy gives up on one after SILENT_GIVE_UP_MS, far beyond that limit and the lock's check period.
 */
function checkSessions(log: readonly (SessionRecord | PushRecord)[], fail: Fail, bump: Bump): void {
  for (const r of log) {
    if (r.kind === "push") {
      bump(
        r.frame.type === "lost" ? `lost pushed (${String(r.frame.reason)})` : "session frames refused unread",
      );
      continue;
    }
    if (r.event === "open") bump("sessions opened");
    if (r.event === "refused") bump("session handshakes refused or failed");
    if (r.event === "cut") bump(`sessions cut (${r.mode})`);
    if (r.event !== "end") continue;
    bump(`sessions ended first by: ${r.endedBy}`);
    if (r.serverNeverClosed) {
      fail(
        "silent-session-closed",
        `${r.name}: session ${r.session}, silent since ${r.lastForwardedAt}, was still open at ${r.at}`,
      );
    }
  }
}

/**
 * At every grant instant, the leases that provably still held (started no later, ended no earlier) and the
 * new one must be compatible: a semaphore's permits within its limit; otherwise readers only, or one lease.
 */
function checkExclusion(name: string, limit: number, leases: LeaseSpan[], fail: Fail): void {
  const byStart = [...leases].sort((a, b) => a.start - b.start || a.token - b.token);
  let live: LeaseSpan[] = [];
  let latestStart: LeaseSpan | null = null;
  for (const b of [...leases].sort((x, y) => x.token - y.token)) {
    if (latestStart !== null && b.start < latestStart.start) {
      fail(
        "tokens-increase",
        `${name}: token ${b.token} granted at ${b.start}, before token ${latestStart.token} at ${latestStart.start}`,
      );
    }
    if (latestStart === null || b.start > latestStart.start) latestStart = b;
  }
  for (const b of byStart) {
    live = live.filter((a) => endLower(a) > b.start);
    const describe = (a: LeaseSpan) =>
      `token ${a.token} (${a.mode}×${a.permits}, granted ${a.start}, live until at least ${endLower(a)}: ` +
      `expiry ${a.lastExpiry}, ${Number.isFinite(a.releasedAt) ? `release sent ${a.releasedAt}` : "no release"})`;
    if (limit > 1) {
      const inUse = live.reduce((n, a) => n + a.permits, 0) + b.permits;
      if (inUse > limit) {
        fail(
          "permits-within-limit",
          `${name}: token ${b.token} (${b.permits} permits) granted at ${b.start} made ${inUse} of ${limit} ` +
            `permits in use with ${live.map(describe).join(", ")}`,
        );
      }
    } else {
      const clash = live.filter((a) => a.mode === "exclusive" || b.mode === "exclusive");
      if (clash.length > 0) {
        fail(
          "mutual-exclusion",
          `${name}: token ${b.token} (${b.mode}) granted at ${b.start} while ${clash.map(describe).join(", ")}`,
        );
      }
    }
    live.push(b);
  }
}

/** A retry with a leaseId that was granted gets that lease back (or lease_ended once it is over), never a queue place. */
function checkRetries(history: History, fail: Fail, bump: Bump): void {
  const granted = new Map<string, { token: number; answeredAt: number }>();
  for (const ex of history.exchanges) {
    const route = routeOf(ex);
    const leaseId = (ex.request as { leaseId?: string } | null)?.leaseId;
    if (route?.op !== "acquire" || leaseId === undefined) continue;
    const key = `${route.name}\n${leaseId}`;
    const before = granted.get(key);
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
      granted.set(key, { token: (ex.response as { token: number }).token, answeredAt: ex.answeredAt });
    }
  }
}

/**
 * What the clients and the store saw. The fence: the store never lets a write below the highest token seen,
 * or a read below the highest token written, through; an access a live holder makes is never refused
 * (someone newer was there: two holders); late accesses after a newer holder's are refused. Semaphore holders
 * do not use the store: concurrent permits have no order a single fence could keep, so their safety is the
 * permit count of checkExclusion. Clients must also never crash or act on a lease unlike what they asked.
 */
function checkClients(input: CheckInput, history: History, fail: Fail, bump: Bump): void {
  for (const a of input.storeAccesses) {
    const floor = a.op === "write" ? a.seen : a.written;
    if (a.accepted && a.token < floor) {
      fail("fence", `store accepted a ${a.op} of token ${a.token} on ${a.resource} after ${floor}`);
    }
  }
  const roles = new Map<string, string>();
  for (const e of input.clientEvents) if (e.ev === "start") roles.set(e.client, String(e.role));
  for (const e of input.clientEvents) {
    if (e.ev === "grant") bump(`grants received by ${roles.get(e.client) ?? "?"} clients`);
    if (e.ev === "stall") bump("stalls injected");
    if (e.ev === "retry") bump(`client retries (${String(e.what)})`);
    if (e.ev === "crash") fail("client-error", `${e.client}: ${String(e.error)}`);
    if (e.ev === "mismatch") fail("grant-matches-request", `${e.client}: ${JSON.stringify(e)}`);
    if (e.ev === "abandon") bump("session leases walked away from (session closed)");
    if (e.ev === "lease-lost")
      bump(`session leases known lost before their work was done (${String(e.reason)})`);
    if (e.ev !== "access") continue;
    const op = String(e.op);
    bump(e.late ? `late ${op}s` : `${op}s in lease`);
    if (e.late) {
      bump(
        e.accepted
          ? `late ${op}s accepted (no newer holder had been there)`
          : `late ${op}s refused by the fence`,
      );
    } else if (!e.accepted) {
      const storeAt = Number(e.storeAt);
      // A session's lease ends when the server sees the session end, which its holder hears of at about the
      // same time, in no set order: refused after that instant is the fence doing its work, not two holders.
      const sessionEnd =
        history.locks.get(String(e.name))?.leases.get(Number(e.token))?.sessionEndLower ??
        Number.POSITIVE_INFINITY;
      if (storeAt >= sessionEnd && storeAt < Number(e.heldUntil)) {
        bump(`in-lease ${op}s fenced after their session ended (before the holder heard)`);
      } else if (storeAt < Number(e.heldUntil)) {
        fail(
          "no-double-holder",
          `${e.client} (${op} with token ${e.token} on ${e.name}, live until ${e.heldUntil}) was fenced at ` +
            `${storeAt} (seen ${e.seen}, written ${e.written})`,
        );
      } else {
        bump(`in-lease ${op}s fenced after arriving past expiry (slow machine)`);
      }
    }
  }
}
