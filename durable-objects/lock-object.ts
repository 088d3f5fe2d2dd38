/**
 * The Durable Object around one lock: it loads the state once, applies each event (an RPC call, a session
 * frame, a closed socket, a timer, the alarm) through the pure state machine with one clock reading, writes
 * the new state before anything is answered, keeps the alarm at the next deadline, and answers parked
 * long-polls and sessions (session-hub.ts) when the machine grants them or their wait ends. It holds no lock
 * rules of its own, and answers only public views: a leaseId leaves only to its holder.
 */
import { DurableObject } from "cloudflare:workers";
import type { Lease, LockEvents, TokenCheck } from "../client/src/protocol.ts";
import { MAX_SESSIONS, SESSION_TIMEOUT_MS } from "../client/src/protocol.ts";
import { problem } from "../worker/problem.ts";
import { readSettings } from "../worker/settings.ts";
import type { EventsQuery } from "./history-store.ts";
import { LockObserver } from "./lock-observer.ts";
import type {
  AcquireCommand,
  AcquireOutcome,
  Busy,
  Command,
  ForceReleaseCommand,
  Granted,
  LockSnapshot,
  LockState,
  OutcomeOf,
  ReleaseCommand,
  ReleaseOutcome,
  RenewCommand,
  RenewOutcome,
} from "./lock-state.ts";
import { grantView, holderView, nextDeadline, snapshot, transition, waitingAnswer } from "./lock-state.ts";
import { SESSION_ROLES, type SessionOpening } from "./session.ts";
import { SessionHub } from "./session-hub.ts";
import { LockStore } from "./storage.ts";

/** A grant as its holder receives it: the wire `Lease` without the lock's name, which the Worker adds. */
export interface Grant {
  readonly kind: "granted";
  readonly lease: Omit<Lease, "name">;
}

export type AcquireAnswer =
  | Grant
  | Exclude<AcquireOutcome, Granted | { kind: "queued" }>
  | { readonly kind: "rejected"; readonly code: "wait_cancelled" };
export type RenewAnswer = Grant | Exclude<RenewOutcome, Granted>;
export type ReleaseAnswer = ReleaseOutcome;
export type ForceReleaseAnswer = OutcomeOf["forceRelease"];

/** What callers send: each command without its tag. */
export type AcquireInput = Omit<AcquireCommand, "type">;
export type RenewInput = Omit<RenewCommand, "type">;
export type ReleaseInput = Omit<ReleaseCommand, "type">;
export type ForceReleaseInput = Omit<ForceReleaseCommand, "type">;

/** The header by which the Worker hands a session's authorization to the object (it sets it itself). */
export const SESSION_HEADER = "x-edgelock-session";

interface Parked {
  resolve: (answer: AcquireAnswer) => void;
  timer: ReturnType<typeof setTimeout>;
  /** When the parked request reached the lock object. */
  arrivedAt: number;
}

export class LockObject extends DurableObject<Env> {
  readonly #store: LockStore;
  readonly #sessions: SessionHub;
  readonly #observer: LockObserver;
  #state: LockState;
  #alarmAt: number | null = null;
  /** Requests held open for a grant, by leaseId. The queue itself lives in the state, in storage. */
  readonly #parked = new Map<string, Parked>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous reads need no gate; they create nothing, so inspecting an unused name writes nothing.
    this.#store = new LockStore(ctx.storage, { history: readSettings(env).history });
    this.#state = this.#store.load();
    this.#observer = new LockObserver(env, { name: ctx.id.name ?? "", state: () => this.#state });
    this.#sessions = new SessionHub(ctx, {
      name: ctx.id.name ?? "",
      state: () => this.#state,
      apply: (command, now) => this.#apply(command, now),
    });
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
      const now = Date.now();
      // Sessions whose sockets did not survive a restart (a deploy, a crash) are gone: end what they held
      // and withdraw what they waited for, as their close would have. Hibernated sockets are still listed.
      for (const session of this.#sessions.orphans(this.#state)) {
        this.#apply({ type: "sessionClosed", session }, now);
      }
      this.#syncAlarm(now);
    });
  }

  async acquire(input: AcquireInput): Promise<AcquireAnswer> {
    const now = Date.now();
    const outcome = this.#apply({ type: "acquire", ...input }, now);
    switch (outcome.kind) {
      case "granted": {
        // An older request for the same leaseId, still parked (a retry overtook it), gets the same lease.
        this.#settle(input.leaseId, grant(outcome, this.#parked.get(input.leaseId)?.arrivedAt ?? now));
        return grant(outcome, now);
      }
      case "queued":
        return this.#park(outcome.leaseId, outcome.waitUntil, now);
      default:
        return outcome;
    }
  }

  renew(input: RenewInput): RenewAnswer {
    const now = Date.now();
    const outcome = this.#apply({ type: "renew", ...input }, now);
    return outcome.kind === "granted" ? grant(outcome, now) : outcome;
  }

  release(input: ReleaseInput): ReleaseAnswer {
    return this.#apply({ type: "release", ...input }, Date.now());
  }

  /** Ends every lease now; `by` (an admin key's name) is kept with each, for the holders to learn. */
  forceRelease(input: ForceReleaseInput): ForceReleaseAnswer {
    return this.#apply({ type: "forceRelease", ...input }, Date.now());
  }

  /** The lock's state at this instant, with the page of holders whose tokens come after `after`. */
  inspect({ after }: { after: number }): LockSnapshot {
    const now = Date.now();
    this.#apply({ type: "tick" }, now);
    return snapshot(this.#state, now, after);
  }

  /** One page of the lock's history, newest first (`GET /v1/locks/{name}/events`); the Worker adds the name. */
  events(query: EventsQuery): Omit<LockEvents, "name"> {
    const now = Date.now();
    // What is due is recorded first: an expiry the alarm has not reached yet is history already.
    this.#apply({ type: "tick" }, now);
    return { ...this.#store.events(query, now), now };
  }

  /** Whether `token` is the fencing token of a lease that holds the lock now (Chubby's CheckSequencer). */
  checkToken({ token }: { token: number }): Omit<TokenCheck, "name"> {
    this.#apply({ type: "tick" }, Date.now());
    const lease = this.#state.holders.find((l) => l.token === token);
    return {
      token,
      held: lease !== undefined,
      holder: lease === undefined ? null : holderView(lease),
      lastToken: this.#state.lastToken,
    };
  }

  /** A session's WebSocket upgrade, which the Worker authorized and describes in SESSION_HEADER. */
  override async fetch(request: Request): Promise<Response> {
    const opening = readOpening(request.headers.get(SESSION_HEADER));
    if (opening === null || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("sessions are opened through the Worker", { status: 400 });
    }
    if (this.#sessions.open >= MAX_SESSIONS) {
      return problem(
        "too_many_sessions",
        `this lock keeps at most ${MAX_SESSIONS} sessions open; retry later`,
        {
          headers: { "retry-after": "5" },
        },
      );
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
    const answer = this.#sessions.accept(opening, offered, Date.now());
    this.#syncAlarm(Date.now());
    return answer;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.#sessions.frame(ws, message, Date.now());
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    // Answer the client's close frame, or it waits for one (local workerd does not reply by itself, whatever
    // the compatibility date says): 1005/1006 are not codes one may send, so those get a plain 1000.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
    } catch {
      // Already closed: nothing to answer.
    }
    this.#closeSession(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#closeSession(ws);
  }

  #closeSession(ws: WebSocket): void {
    this.#sessions.closed(ws);
    this.#apply({ type: "sessionClosed", session: this.#sessions.sessionOf(ws) }, Date.now());
  }

  override async alarm(): Promise<void> {
    // The alarm that woke us is spent; `tick` re-reads the state, so early, late or repeated alarms are harmless.
    this.#alarmAt = null;
    const now = Date.now();
    for (const session of this.#sessions.silent(now)) this.#apply({ type: "sessionClosed", session }, now);
    this.#apply({ type: "tick" }, now);
    // A report the directory lost is repaired here too, not only by the next change.
    this.#observer.report(now);
  }

  /** Holds the request open until the machine grants its leaseId, a release cancels it, or its wait ends. */
  #park(leaseId: string, waitUntil: number, now: number): Promise<AcquireAnswer> {
    // A re-poll while an older request for the same leaseId is still parked replaces that request.
    this.#settle(leaseId, waitingAnswer(this.#state, leaseId, now));
    const { promise, resolve } = Promise.withResolvers<AcquireAnswer>();
    this.#parked.set(leaseId, { resolve, timer: this.#waitTimer(leaseId, waitUntil, now), arrivedAt: now });
    return promise;
  }

  #waitTimer(leaseId: string, waitUntil: number, now: number): ReturnType<typeof setTimeout> {
    return setTimeout(
      () => {
        const parked = this.#parked.get(leaseId);
        if (parked === undefined) return;
        const at = Date.now();
        if (at <= waitUntil) {
          // A timer that fired early: the wait is still live and may yet be granted.
          parked.timer = this.#waitTimer(leaseId, waitUntil, at);
          return;
        }
        this.#settle(leaseId, this.#apply({ type: "waitEnded", leaseId }, at));
      },
      waitUntil - now + 1,
    );
  }

  /** Applies one command at `now`, the one clock reading of its event, and carries out its effects. */
  #apply<C extends Command>(command: C, now: number): OutcomeOf[C["type"]] {
    const before = this.#state;
    const step = transition(before, command, now, this.#store);
    this.#store.save(before, step.state, step.effects.ended, now, step.effects.events);
    this.#state = step.state;
    this.#syncAlarm(now);
    this.#observer.afterStep(command, step, before, now);
    // Sessions first: a holder that lost its lease hears it before anyone else is told they have it.
    this.#sessions.afterStep(step, before, now);
    for (const lease of step.effects.granted) {
      if (lease.session !== null) continue;
      const parked = this.#parked.get(lease.leaseId);
      const granted: Granted = { kind: "granted", lease, holdId: lease.leaseId, limit: step.state.limit };
      this.#settle(lease.leaseId, grant(granted, parked?.arrivedAt ?? now));
    }
    for (const leaseId of step.effects.cancelled) {
      this.#settle(leaseId, { kind: "rejected", code: "wait_cancelled" });
    }
    return step.outcome;
  }

  /** Answers the request parked for `leaseId`, if any. */
  #settle(leaseId: string, answer: AcquireAnswer | Busy): void {
    const parked = this.#parked.get(leaseId);
    if (parked === undefined) return;
    this.#parked.delete(leaseId);
    clearTimeout(parked.timer);
    parked.resolve(answer);
  }

  /**
   * Keeps the one alarm no later than the state's next deadline, and, while sessions are open, the next
   * check for silent ones. It only ever moves earlier: an alarm that fires before anything is due just
   * re-arms (`alarm()` is idempotent), which is cheaper than a second storage commit on every acquire and
   * release. Not awaited: the output gate holds replies until it is stored.
   */
  #syncAlarm(now: number): void {
    let next = nextDeadline(this.#state, now);
    if (this.#sessions.open > 0)
      next = Math.min(next ?? Number.POSITIVE_INFINITY, now + SESSION_TIMEOUT_MS / 2);
    if (next === null || (this.#alarmAt !== null && this.#alarmAt <= next)) return;
    this.#alarmAt = next;
    void this.ctx.storage.setAlarm(next);
  }
}

function grant(granted: Granted, arrivedAt: number): Grant {
  return { kind: "granted", lease: grantView(granted, arrivedAt) };
}

function readOpening(header: string | null): SessionOpening | null {
  if (header === null) return null;
  const value = JSON.parse(header) as { principal?: unknown; role?: unknown };
  const role = SESSION_ROLES.find((r) => r === value.role);
  return typeof value.principal === "string" && role !== undefined
    ? { principal: value.principal, role }
    : null;
}
