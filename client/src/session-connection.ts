/**
 * One open session socket: numbered request frames matched to their answers, pushed `lost` and `state`
 * frames handed on, the `ping` heartbeat, and the end of it all. A socket that stops answering pings is
 * declared dead well before the lock object would close it for silence, so a holder hears of its loss
 * before anyone else can be granted. It never reconnects: a closed session has lost what it held, and
 * session.ts and watch.ts decide what comes next.
 */

import { errorFromProblem, ServiceError } from "./errors.ts";
import { DRIFT_FACTOR, MIN_DRIFT_MS } from "./lease.ts";
import type {
  LockView,
  Problem,
  SessionClientFrame,
  SessionFrameId,
  SessionLostFrame,
  SessionServerFrame,
} from "./protocol.ts";
import { SESSION_PING_MS, SESSION_TIMEOUT_MS } from "./protocol.ts";
import { unrefTimer } from "./retry.ts";
import { OPEN, type WebSocketLike } from "./socket.ts";

/**
 * How long the client waits for any answer to what it sent (a ping's `pong`, a frame's answer) before it
 * declares the socket dead: a ping interval before the lock object's own silence limit, so the holder
 * knows before the lock can be handed on.
 */
export const SESSION_DEAD_AFTER_MS = SESSION_TIMEOUT_MS - SESSION_PING_MS;

/** What a connection tells its owner. */
export interface ConnectionEvents {
  lost?(frame: SessionLostFrame): void;
  state?(view: LockView): void;
  /** Called once when the socket ends for any reason, before the requests still open are rejected. */
  closed(detail: string): void;
}

/** An answer frame without its `type` and `id`: the HTTP body it stands for. */
export type AnswerBody = Record<string, unknown>;

type AnswerFrame = Extract<SessionServerFrame, { type: "granted" | "released" | "state" }>;

interface Pending {
  readonly sentAt: number;
  readonly settle: (body: AnswerBody, sentAt: number) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** Frames sent without their `id`: the connection numbers them. */
type Outgoing = SessionClientFrame extends infer F ? (F extends unknown ? Omit<F, "id"> : never) : never;

export class SessionConnection {
  readonly #ws: WebSocketLike;
  readonly #events: ConnectionEvents;
  readonly #pending = new Map<SessionFrameId, Pending>();
  /** When each unanswered ping was sent, oldest first. */
  readonly #pings: number[] = [];
  readonly #heartbeat: ReturnType<typeof setInterval>;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #nextId = 1;
  /** The latest local time something sent on this socket is known to have reached the lock. */
  #heardAt: number;
  #ended: string | null = null;
  readonly #endedPromise: Promise<string>;
  #markEnded: (detail: string) => void = () => undefined;

  /** `openedAt`: when the handshake was started, which the lock counts as the session's first sign of life. */
  constructor(ws: WebSocketLike, openedAt: number, events: ConnectionEvents) {
    this.#ws = ws;
    this.#events = events;
    this.#heardAt = openedAt;
    this.#endedPromise = new Promise((resolve) => {
      this.#markEnded = resolve;
    });
    ws.addEventListener("message", (event) => this.#receive(event.data));
    ws.addEventListener("close", (event) =>
      this.#end(`closed by the server or network (${event.code}${event.reason ? ` ${event.reason}` : ""})`),
    );
    ws.addEventListener("error", () => this.#end("the connection failed"));
    this.#heartbeat = unrefTimer(setInterval(() => this.#ping(), SESSION_PING_MS));
    this.#arm();
    if (ws.readyState !== OPEN) this.#end("the socket is not open");
  }

  /** Whether the socket has ended (then every lease it carried is lost). */
  get ended(): boolean {
    return this.#ended !== null;
  }

  /** Resolves with why the socket ended. */
  get whenEnded(): Promise<string> {
    return this.#endedPromise;
  }

  /**
   * Sends `frame` with the next id. `settle` turns the answer's body into the result, synchronously as it
   * arrives (so a grant is recorded before any later frame is read); an `error` answer rejects with its
   * typed error. Rejects with a retryable `network_error` if the socket ends first, or after `timeoutMs`.
   */
  request<T>(
    frame: Outgoing,
    settle: (body: AnswerBody, sentAt: number) => T,
    timeoutMs?: number,
  ): Promise<T> {
    if (this.#ended !== null) return Promise.reject(this.#closedError());
    const id = this.#nextId++;
    const sentAt = Date.now();
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { sentAt, settle, resolve: resolve as (value: unknown) => void, reject };
      if (timeoutMs !== undefined) {
        pending.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new ServiceError("network_error", `no answer on the session within ${timeoutMs}ms`));
        }, timeoutMs);
      }
      this.#pending.set(id, pending);
      this.#ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Closes the socket: the lock ends everything this session held or waited for. */
  close(detail = "closed by the client"): void {
    this.#end(detail);
  }

  #receive(data: unknown): void {
    if (typeof data !== "string") return;
    if (data === "pong") {
      const sentAt = this.#pings.shift();
      if (sentAt !== undefined) this.#heard(sentAt);
      return;
    }
    let frame: SessionServerFrame;
    try {
      frame = JSON.parse(data) as SessionServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "lost":
        this.#events.lost?.(frame);
        return;
      case "state": {
        const { type: _, id, ...view } = frame;
        if (id !== undefined) this.#answer(id, frame);
        this.#events.state?.(view);
        return;
      }
      case "granted":
      case "released":
        this.#answer(frame.id, frame);
        return;
      case "error": {
        if (frame.id === null) return;
        const pending = this.#take(frame.id);
        if (pending === undefined) return;
        const { type: _, id: __, problemType, ...members } = frame;
        const problem = { ...members, type: problemType } as Problem;
        pending.reject(errorFromProblem(problem, problem.status));
        return;
      }
      default:
        return;
    }
  }

  #answer(id: SessionFrameId, frame: AnswerFrame): void {
    const pending = this.#take(id);
    if (pending === undefined) return;
    const { type: _, id: __, ...body } = frame;
    try {
      pending.resolve(pending.settle(body, pending.sentAt));
    } catch (error) {
      pending.reject(error);
    }
  }

  #take(id: SessionFrameId): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    this.#heard(pending.sentAt);
    return pending;
  }

  #ping(): void {
    if (this.#ended !== null) return;
    this.#pings.push(Date.now());
    this.#ws.send("ping");
  }

  #heard(sentAt: number): void {
    if (sentAt <= this.#heardAt) return;
    this.#heardAt = sentAt;
    this.#arm();
  }

  /** Declares the socket dead once nothing sent since `#heardAt` has been answered for too long. */
  #arm(): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    const margin = Math.ceil(SESSION_DEAD_AFTER_MS * DRIFT_FACTOR) + MIN_DRIFT_MS;
    const delay = this.#heardAt + SESSION_DEAD_AFTER_MS - margin - Date.now();
    this.#watchdog = unrefTimer(
      setTimeout(() => this.#end(`no answer to pings for ${SESSION_DEAD_AFTER_MS}ms`), Math.max(0, delay)),
    );
  }

  #end(detail: string): void {
    if (this.#ended !== null) return;
    this.#ended = detail;
    clearInterval(this.#heartbeat);
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    try {
      this.#ws.close(1000, "bye");
    } catch {
      // Already closing or closed.
    }
    this.#events.closed(detail);
    const error = this.#closedError();
    for (const pending of this.#pending.values()) {
      if (pending.timer !== undefined) clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#markEnded(detail);
  }

  #closedError(): ServiceError {
    return new ServiceError("network_error", `the session ended: ${this.#ended ?? "closed"}`);
  }
}
