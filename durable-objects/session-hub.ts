/**
 * The lock object's WebSocket sessions: opening one (hibernatable, with the runtime answering pings), turning
 * its frames into the same commands HTTP requests become, pushing what a step did to the sessions concerned
 * (grants, refusals of waits that ended, `lost` when a session's lease ends behind its back, `state` to
 * watchers), and closing sessions that went silent. Everything it needs between events is in the sockets'
 * attachments, so an evicted object goes on serving its sockets. The rules stay in lock-state.ts.
 */
import { SESSION_PROTOCOL, SESSION_TIMEOUT_MS } from "../client/src/protocol.ts";
import { lockViewOf, problemOf, releasedOf } from "../worker/answers.ts";
import { ProblemError } from "../worker/problem.ts";
import type { Command, Granted, LockState, OutcomeOf, Step } from "./lock-state.ts";
import { grantView, snapshot, waitingAnswer } from "./lock-state.ts";
import {
  allowed,
  type FrameId,
  frames,
  MAX_PENDING_PER_SESSION,
  parseFrame,
  type SessionAttachment,
  type SessionOpening,
} from "./session.ts";

/** What the hub needs of its lock object: its name, its state, and one command applied at one instant. */
export interface SessionHost {
  readonly name: string;
  state(): LockState;
  apply<C extends Command>(command: C, now: number): OutcomeOf[C["type"]];
}

const TAG = (session: string) => `s:${session}`;

export class SessionHub {
  readonly #ctx: DurableObjectState;
  readonly #host: SessionHost;
  #lastView: string | null = null;
  /**
   * The sockets that asked for `state`, kept in memory so a step need not read every socket's attachment;
   * null until first needed after the object (re)started, when it is read back from the attachments.
   */
  #watchers: Set<WebSocket> | null = null;

  constructor(ctx: DurableObjectState, host: SessionHost) {
    this.#ctx = ctx;
    this.#host = host;
    // Pings are answered by the runtime without waking the object; their time is read at heartbeat checks.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  get open(): number {
    return this.#ctx.getWebSockets().length;
  }

  /** Accepts the socket of an upgrade the Worker authorized. */
  accept(opening: SessionOpening, offered: readonly string[], now: number): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const session = crypto.randomUUID();
    this.#ctx.acceptWebSocket(server, [TAG(session)]);
    const attachment: SessionAttachment = {
      session,
      principal: opening.principal,
      role: opening.role,
      lastSeen: now,
      watching: false,
      pending: {},
    };
    server.serializeAttachment(attachment);
    // A browser offers the protocol and its key as subprotocols; the answer names the protocol only.
    const headers: Record<string, string> = offered.includes(SESSION_PROTOCOL)
      ? { "sec-websocket-protocol": SESSION_PROTOCOL }
      : {};
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** One frame from a session: check it, apply it, answer it. */
  frame(ws: WebSocket, message: string | ArrayBuffer, now: number): void {
    const host = this.#host;
    const a = attachmentOf(ws);
    a.lastSeen = now;
    ws.serializeAttachment(a);
    const parsed = parseFrame(message, () => crypto.randomUUID().replaceAll("-", ""));
    if (!parsed.ok) {
      ws.send(frames.error(parsed.id, parsed.problem));
      return;
    }
    const { frame } = parsed;
    if (!allowed(a.role, frame.type)) {
      const problem = new ProblemError(
        "forbidden",
        `a ${a.role} key may not ${frame.type}: that needs a write key`,
      );
      ws.send(frames.error(frame.id, problem));
      return;
    }
    switch (frame.type) {
      case "acquire": {
        const { leaseId } = frame.input;
        if (Object.keys(a.pending).length >= MAX_PENDING_PER_SESSION && a.pending[leaseId] === undefined) {
          const detail = `a session may wait for at most ${MAX_PENDING_PER_SESSION} acquires at once`;
          ws.send(frames.error(frame.id, new ProblemError("too_many_waiters", detail)));
          return;
        }
        // Recorded before the step: a grant or refusal the step pushes goes to this frame.
        a.pending[leaseId] = [frame.id, now];
        ws.serializeAttachment(a);
        const outcome = host.apply(
          { type: "acquire", ...frame.input, principal: a.principal, session: a.session },
          now,
        );
        if (outcome.kind === "queued") return;
        this.#answerWait(a.session, leaseId, (id, at) =>
          outcome.kind === "granted"
            ? frames.granted(id, { name: host.name, ...grantView(outcome, at) })
            : frames.error(id, problemOf(outcome)),
        );
        return;
      }
      case "renew": {
        const { leaseId, ttlMs, mode } = frame;
        const outcome = host.apply({ type: "renew", leaseId, ttlMs, mode }, now);
        ws.send(
          outcome.kind === "granted"
            ? frames.granted(frame.id, { name: host.name, ...grantView(outcome, now) })
            : frames.error(frame.id, problemOf(outcome)),
        );
        return;
      }
      case "release": {
        const outcome = host.apply({ type: "release", leaseId: frame.leaseId, session: a.session }, now);
        ws.send(
          outcome.kind === "rejected"
            ? frames.error(frame.id, problemOf(outcome))
            : frames.released(frame.id, releasedOf(outcome)),
        );
        return;
      }
      case "watch": {
        a.watching = true;
        ws.serializeAttachment(a);
        this.#watching().add(ws);
        ws.send(frames.state(frame.id, lockViewOf(host.name, snapshot(host.state(), now))));
        return;
      }
      default:
        assertNever(frame);
    }
  }

  /**
   * Tells the sessions what a step did, in this order: the holders that lost a lease first (before anyone
   * else is told they have it), then grants and refusals to waiting sessions, then watchers.
   */
  afterStep(step: Step, before: LockState, now: number): void {
    const { name } = this.#host;
    for (const { lease, reason, by } of step.effects.lost) {
      if (lease.session === null || reason === "session_closed") continue;
      const ws = this.#socket(lease.session);
      for (const holdId of lease.holds) ws?.send(frames.lost(holdId, reason, by));
    }
    for (const lease of step.effects.granted) {
      if (lease.session === null) continue;
      const granted: Granted = { kind: "granted", lease, holdId: lease.leaseId, limit: step.state.limit };
      this.#answerWait(lease.session, lease.leaseId, (id, at) =>
        frames.granted(id, { name, ...grantView(granted, at) }),
      );
    }
    for (const leaseId of step.effects.cancelled) {
      const session = before.queue.find((w) => w.leaseId === leaseId)?.session ?? null;
      if (session !== null) {
        this.#answerWait(session, leaseId, (id) =>
          frames.error(
            id,
            new ProblemError("wait_cancelled", "this wait was cancelled by a release of its leaseId"),
          ),
        );
      }
    }
    // Session waits whose time ran out: no request timer answers them, so the step that sees it does.
    for (const w of step.state.queue) {
      if (w.session !== null && now > w.waitUntil) {
        this.#answerWait(w.session, w.leaseId, (id) =>
          frames.error(id, problemOf(waitingAnswer(step.state, w.leaseId, now))),
        );
      }
    }
    this.#pushState(step.state, name, now);
  }

  /** Closes the sessions that sent nothing (not even a ping) for SESSION_TIMEOUT_MS; returns their ids. */
  silent(now: number): string[] {
    const closed: string[] = [];
    for (const ws of this.#ctx.getWebSockets()) {
      const a = attachmentOf(ws);
      const pinged = this.#ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      if (now - Math.max(a.lastSeen, pinged) > SESSION_TIMEOUT_MS) {
        closed.push(a.session);
        this.#watchers?.delete(ws);
        try {
          ws.close(4000, "no frame or ping for too long");
        } catch {
          // Already closing: its close event ends the session too, and ending it twice is harmless.
        }
      }
    }
    return closed;
  }

  /** Sessions the state names (as holders or waiters) that have no socket here any more. */
  orphans(state: LockState): string[] {
    const named = new Set<string>();
    for (const l of state.holders) if (l.session !== null) named.add(l.session);
    for (const w of state.queue) if (w.session !== null) named.add(w.session);
    if (named.size === 0) return [];
    for (const ws of this.#ctx.getWebSockets()) named.delete(attachmentOf(ws).session);
    return [...named];
  }

  /** The session a socket belongs to. */
  sessionOf(ws: WebSocket): string {
    return attachmentOf(ws).session;
  }

  /** Answers the acquire frame waiting on `leaseId`, if any: `frame` gets its id and when it arrived. */
  #answerWait(session: string, leaseId: string, frame: (id: FrameId, arrivedAt: number) => string): void {
    const ws = this.#socket(session);
    if (ws === undefined) return;
    const a = attachmentOf(ws);
    const pending = a.pending[leaseId];
    if (pending === undefined) return;
    delete a.pending[leaseId];
    ws.serializeAttachment(a);
    ws.send(frame(...pending));
  }

  /** A socket that closed stops being watched (its close event reaches the object). */
  closed(ws: WebSocket): void {
    this.#watchers?.delete(ws);
  }

  #watching(): Set<WebSocket> {
    this.#watchers ??= new Set(this.#ctx.getWebSockets().filter((ws) => attachmentOf(ws).watching));
    return this.#watchers;
  }

  #pushState(state: LockState, name: string, now: number): void {
    const watchers = this.#watching();
    if (watchers.size === 0) return;
    const view = lockViewOf(name, snapshot(state, now));
    const text = JSON.stringify(view);
    if (text === this.#lastView) return;
    this.#lastView = text;
    const frame = frames.state(null, view);
    for (const ws of watchers) {
      try {
        ws.send(frame);
      } catch {
        watchers.delete(ws); // closing: its close event ends the session
      }
    }
  }

  #socket(session: string): WebSocket | undefined {
    return this.#ctx.getWebSockets(TAG(session))[0];
  }
}

function attachmentOf(ws: WebSocket): SessionAttachment {
  return ws.deserializeAttachment() as SessionAttachment;
}

function assertNever(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
