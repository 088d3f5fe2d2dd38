/**
 * The chaos proxy's WebSocket half: it passes session upgrades (`GET /v1/locks/{name}/session`) through to
 * the server byte for byte, reads a copy of both directions (ws-frames.ts) and logs each request frame with
 * its answer as an `Exchange` (as if it were the HTTP call it stands for), each pushed `lost`, and how and
 * when each session ended. It can cut a session: reset both TCP connections (a dead NAT), or go silent (a
 * pulled cable: nothing passes either way, no FIN, until the server closes it for silence). It never answers
 * anything itself.
 */
import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Rng } from "./rng.ts";
import { FrameReader, OPCODE, type WsMessage } from "./ws-frames.ts";

/** How a cut ends a session: both connections reset at once, or silence both ways (no FIN reaches anyone). */
export type CutMode = "reset" | "silent";

/** What ended a session first, as the proxy saw it. */
export type SessionEndCause =
  | "client-close" // the client sent a close frame
  | "client-gone" // the client's connection ended without one (a killed process)
  | "cut-reset"
  | "cut-silent" // after a silent cut: whatever ended it later (normally the server, for silence)
  | "server-close" // the server sent a close frame
  | "server-gone" // the server's connection ended without one (a restart)
  | "proxy"; // the proxy shut down, or gave up on a silent session the server never closed

/** One proxy.jsonl line about a session's life. Times are this machine's epoch ms, as everywhere. */
export type SessionRecord =
  | { kind: "session"; event: "open"; session: number; name: string; at: number }
  | { kind: "session"; event: "refused"; session: number; name: string; at: number; why: string }
  | { kind: "session"; event: "cut"; session: number; name: string; at: number; mode: CutMode }
  | {
      kind: "session";
      event: "end";
      session: number;
      name: string;
      /** When both connections were closed. */
      at: number;
      endedBy: SessionEndCause;
      /** When the proxy saw the first sign of the end (of any kind). */
      endedAt: number;
      /**
       * When the proxy first passed the end on to the server (a close frame, FIN or reset): null if never,
       * or only after the server had ended the session itself.
       */
      endSentUpstreamAt: number | null;
      /** When the proxy first saw the server end it (close frame, FIN, reset): null if it never did. */
      serverEndedAt: number | null;
      /** When the last frame (or ping) from the client was passed on to the server. */
      lastForwardedAt: number;
      /** A silent session the server had not closed when the proxy gave up on it. */
      serverNeverClosed: boolean;
    };

/** A frame the server pushed without being asked (`lost`, or an `error` for a frame it could not read). */
export type PushRecord = {
  kind: "push";
  session: number;
  name: string;
  at: number;
  frame: Record<string, unknown>;
};

/** A session request frame with its answer, in the shape of the HTTP exchange it stands for. */
export type SessionExchange = {
  kind: "exchange";
  id: number;
  method: "WS";
  /** `/v1/locks/{name}/{acquire|renew|release}`, as the HTTP route of the same operation. */
  path: string;
  session: number;
  sentAt: number;
  answeredAt: number;
  request: unknown;
  status: number | null;
  response: unknown;
  upstreamError: string | null;
  dropped: false;
  clientGone: boolean;
};

/** The `upstreamError` of a session frame whose session ended before it was answered. */
export const SESSION_ENDED = "session ended";
/** The `upstreamError` of a frame a silent cut swallowed: it never reached the server. */
export const NOT_FORWARDED = "not forwarded (silent cut)";

/** How long the proxy waits for the server to close a silent session before it gives up and resets it. */
export const SILENT_GIVE_UP_MS = 40_000;

const SESSION_PATH = /^\/v1\/locks\/([^/?]+)\/session(?:\?|$)/;
const REQUEST_TYPES = new Set(["acquire", "renew", "release"]);

export interface RelayLog {
  write(record: SessionRecord | PushRecord | SessionExchange): void;
}

interface Pending {
  readonly type: string;
  readonly request: Record<string, unknown>;
  readonly sentAt: number;
}

class Relay {
  readonly id: number;
  readonly name: string;
  readonly #encodedName: string;
  readonly #client: Socket;
  #upstream: Socket | null = null;
  readonly #deps: RelayDeps;
  readonly #pending = new Map<string, Pending>();
  /** Leases granted on this session and not yet released or lost: what makes it worth cutting. */
  readonly held = new Set<string>();
  #upgraded = false;
  #silent = false;
  #silentTimer: ReturnType<typeof setTimeout> | undefined;
  #headBuffer: Buffer = Buffer.alloc(0);
  readonly #fromClient = new FrameReader();
  readonly #fromServer = new FrameReader();
  #endedBy: SessionEndCause | null = null;
  #endedAt = 0;
  #endSentUpstreamAt: number | null = null;
  #serverEndedAt: number | null = null;
  #lastForwardedAt: number;
  #clientClosed = false;
  #upstreamClosed = false;
  /** The proxy closed the server's connection itself: its close event says nothing of the server. */
  #closedUpstream = false;
  #done = false;
  #serverNeverClosed = false;

  constructor(id: number, encodedName: string, client: Socket, deps: RelayDeps) {
    this.id = id;
    this.#encodedName = encodedName;
    this.name = decodeURIComponent(encodedName);
    this.#client = client;
    this.#deps = deps;
    this.#lastForwardedAt = Date.now();
  }

  get open(): boolean {
    return this.#upgraded && !this.#silent && this.#endedBy === null;
  }

  get busy(): boolean {
    return this.held.size > 0 || [...this.#pending.values()].some((p) => p.type === "acquire");
  }

  start(req: IncomingMessage, head: Buffer, upstream: URL): void {
    const up = connect(Number(upstream.port), upstream.hostname);
    this.#upstream = up;
    up.setNoDelay(true);
    this.#client.setNoDelay(true);
    // The request as the client sent it, but for Host and the extensions offer: permessage-deflate would
    // compress the frames this proxy must read.
    const lines = [`${req.method} ${req.url} HTTP/1.1`, `Host: ${upstream.host}`];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const key = req.rawHeaders[i] as string;
      const lower = key.toLowerCase();
      if (lower === "host" || lower === "sec-websocket-extensions") continue;
      lines.push(`${key}: ${req.rawHeaders[i + 1]}`);
    }
    up.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length > 0) this.#fromClientData(head);

    this.#client.on("data", (chunk: Buffer) => this.#fromClientData(chunk));
    this.#client.on("end", () => {
      if (this.#silent) return;
      this.#ending("client-gone");
      this.#sentUpstream();
      up.end();
    });
    this.#client.on("close", () => {
      this.#clientClosed = true;
      if (!this.#silent) {
        this.#ending("client-gone");
        this.#closeUpstream();
      }
      this.#maybeDone();
    });
    this.#client.on("error", () => undefined);
    up.on("data", (chunk: Buffer) => this.#fromServerData(chunk));
    up.on("end", () => {
      this.#serverEnded("server-gone");
      if (this.#silent) this.#client.destroy();
      else this.#client.end();
    });
    up.on("close", () => {
      this.#upstreamClosed = true;
      if (!this.#closedUpstream) this.#serverEnded("server-gone");
      this.#client.destroy();
      this.#maybeDone();
    });
    up.on("error", (err) => {
      if (!this.#upgraded) this.#refused(`upstream: ${err.message}`);
    });
  }

  /** Resets both connections now, with no close frame: both ends see the connection die at once. */
  cutReset(): void {
    const at = this.#cut("reset");
    this.#sentUpstream(at);
    this.#closedUpstream = true;
    this.#client.resetAndDestroy();
    this.#upstream?.resetAndDestroy();
  }

  /** From now on nothing passes either way, and no FIN: the server must notice the silence itself. */
  cutSilent(): void {
    this.#silent = true;
    this.#cut("silent");
    this.#silentTimer = setTimeout(() => {
      this.#serverNeverClosed = this.#serverEndedAt === null;
      this.destroy();
    }, SILENT_GIVE_UP_MS);
    this.#silentTimer.unref();
  }

  /** Ends the session at once (the proxy is closing, or gives up on it). */
  destroy(): void {
    this.#ending("proxy");
    this.#client.destroy();
    this.#closeUpstream();
  }

  #closeUpstream(): void {
    if (this.#closedUpstream) return;
    this.#closedUpstream = true;
    // Once the server has ended the session, closing its connection tells it nothing new.
    if (this.#serverEndedAt === null) this.#sentUpstream();
    this.#upstream?.destroy();
  }

  #fromClientData(chunk: Buffer): void {
    const at = Date.now();
    if (!this.#silent) this.#upstream?.write(chunk);
    for (const m of this.#fromClient.push(chunk)) this.#clientMessage(m, at);
  }

  #clientMessage(m: WsMessage, at: number): void {
    if (!this.#silent) this.#lastForwardedAt = at;
    if (m.opcode === OPCODE.close) {
      this.#ending("client-close", at);
      if (!this.#silent) this.#sentUpstream(at);
      return;
    }
    const frame = m.text === null || m.text === "ping" ? null : parseObject(m.text);
    if (frame === null || typeof frame.type !== "string" || !REQUEST_TYPES.has(frame.type)) return;
    const { type, id, ...request } = frame;
    if (this.#silent) {
      this.#exchange({ type, request, sentAt: at }, at, null, null, NOT_FORWARDED);
      return;
    }
    this.#pending.set(JSON.stringify(id), { type, request, sentAt: at });
  }

  #fromServerData(chunk: Buffer): void {
    const at = Date.now();
    if (!this.#silent) this.#client.write(chunk);
    let data = chunk;
    if (!this.#upgraded) {
      // The handshake's answer: its status line decides whether frames follow.
      this.#headBuffer = Buffer.concat([this.#headBuffer, chunk]);
      const end = this.#headBuffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const statusLine = this.#headBuffer.subarray(0, this.#headBuffer.indexOf("\r\n")).toString("latin1");
      const status = Number(statusLine.split(" ")[1]);
      data = this.#headBuffer.subarray(end + 4);
      this.#headBuffer = Buffer.alloc(0);
      if (status !== 101) {
        this.#refused(`HTTP ${status}`);
        return;
      }
      this.#upgraded = true;
      this.#deps.onOpen(this);
      this.#deps.log.write({ kind: "session", event: "open", session: this.id, name: this.name, at });
    }
    if (data.length === 0) return;
    for (const m of this.#fromServer.push(data)) this.#serverMessage(m, at);
  }

  #serverMessage(m: WsMessage, at: number): void {
    if (m.opcode === OPCODE.close) {
      this.#serverEnded("server-close", at);
      // Behind a pulled cable the server's close frame reaches nobody and its TCP lingers unanswered:
      // the session is over for the server, which is all there is left to see.
      if (this.#silent) this.destroy();
      return;
    }
    const frame = m.text === null || m.text === "pong" ? null : parseObject(m.text);
    if (frame === null) return;
    const { type, id, ...body } = frame;
    if (type === "lost" || (type === "error" && id === null)) {
      if (type === "lost") this.held.delete(String(body.leaseId));
      this.#deps.log.write({ kind: "push", session: this.id, name: this.name, at, frame });
      return;
    }
    if (type !== "granted" && type !== "released" && type !== "error") return;
    const key = JSON.stringify(id);
    const pending = this.#pending.get(key);
    if (pending === undefined) return;
    this.#pending.delete(key);
    if (type === "error") {
      const { problemType, ...members } = body;
      this.#exchange(pending, at, Number(body.status ?? 400), { ...members, type: problemType }, null);
      return;
    }
    const leaseId = String(pending.request.leaseId ?? body.leaseId);
    if (type === "granted" && pending.type === "acquire") this.held.add(leaseId);
    if (type === "released" && body.holdCount === 0) this.held.delete(leaseId);
    this.#exchange(pending, at, 200, body, null);
  }

  #exchange(
    p: Pending,
    answeredAt: number,
    status: number | null,
    response: unknown,
    upstreamError: string | null,
  ): void {
    this.#deps.log.write({
      kind: "exchange",
      id: this.#deps.nextId(),
      method: "WS",
      path: `/v1/locks/${this.#encodedName}/${p.type}`,
      session: this.id,
      sentAt: p.sentAt,
      answeredAt,
      request: p.request,
      status,
      response,
      upstreamError,
      dropped: false,
      clientGone: this.#silent || this.#clientClosed,
    });
  }

  /** Marks the session as cut now, and logs the cut; returns when. */
  #cut(mode: "reset" | "silent"): number {
    const at = Date.now();
    this.#ending(`cut-${mode}`, at);
    this.#deps.log.write({ kind: "session", event: "cut", session: this.id, name: this.name, at, mode });
    return at;
  }

  #ending(cause: SessionEndCause, at = Date.now()): void {
    if (this.#endedBy !== null) return;
    this.#endedBy = cause;
    this.#endedAt = at;
  }

  #sentUpstream(at = Date.now()): void {
    this.#endSentUpstreamAt ??= at;
  }

  #serverEnded(cause: SessionEndCause, at = Date.now()): void {
    this.#ending(cause, at);
    this.#serverEndedAt ??= at;
  }

  #refused(why: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#deps.log.write({
      kind: "session",
      event: "refused",
      session: this.id,
      name: this.name,
      at: Date.now(),
      why,
    });
    this.#deps.stats.refused++;
    // The refusal's answer was passed on; the client reads it, then closes.
    this.#client.end();
    this.#closedUpstream = true;
    this.#upstream?.destroy();
    this.#deps.onDone(this);
  }

  #maybeDone(): void {
    if (this.#done || !this.#clientClosed || !this.#upstreamClosed) return;
    this.#done = true;
    if (this.#silentTimer !== undefined) clearTimeout(this.#silentTimer);
    const at = Date.now();
    if (!this.#upgraded) {
      this.#deps.log.write({
        kind: "session",
        event: "refused",
        session: this.id,
        name: this.name,
        at,
        why: "closed during the handshake",
      });
      this.#deps.onDone(this);
      return;
    }
    // Frames the server may have acted on but never answered: the session ended first.
    for (const p of this.#pending.values()) this.#exchange(p, at, null, null, SESSION_ENDED);
    this.#pending.clear();
    this.#deps.log.write({
      kind: "session",
      event: "end",
      session: this.id,
      name: this.name,
      at,
      endedBy: this.#endedBy ?? "proxy",
      endedAt: this.#endedBy === null ? at : this.#endedAt,
      endSentUpstreamAt: this.#endSentUpstreamAt,
      serverEndedAt: this.#serverEndedAt,
      lastForwardedAt: this.#lastForwardedAt,
      serverNeverClosed: this.#serverNeverClosed,
    });
    this.#deps.onDone(this);
  }
}

interface RelayDeps {
  readonly log: RelayLog;
  readonly stats: SessionRelays["stats"];
  nextId(): number;
  onOpen(relay: Relay): void;
  onDone(relay: Relay): void;
}

export interface SessionRelays {
  /** The http server's `upgrade` handler. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, upstream: URL | null): void;
  /**
   * Cuts one open session, a busy one (holding or waiting) three times in four when there is one; returns
   * its id, or null when none is open.
   */
  cut(rng: Rng, mode: CutMode): number | null;
  readonly stats: { sessions: number; refused: number; cuts: number; silentCuts: number };
  /** Ends every session; resolves once each has logged its end. */
  closeAll(): Promise<void>;
}

export function sessionRelays(log: RelayLog, nextId: () => number): SessionRelays {
  const live = new Set<Relay>();
  let allDone: (() => void) | null = null;
  let nextSession = 1;
  const stats = { sessions: 0, refused: 0, cuts: 0, silentCuts: 0 };
  const deps: RelayDeps = {
    log,
    stats,
    nextId,
    onOpen: () => {
      stats.sessions++;
    },
    onDone: (relay) => {
      live.delete(relay);
      if (live.size === 0) allDone?.();
    },
  };
  return {
    handle(req, socket, head, upstream) {
      const client = socket as Socket;
      const m = SESSION_PATH.exec(req.url ?? "");
      const relay = new Relay(nextSession++, m?.[1] ?? "?", client, deps);
      live.add(relay);
      if (upstream === null) {
        stats.refused++;
        log.write({
          kind: "session",
          event: "refused",
          session: relay.id,
          name: relay.name,
          at: Date.now(),
          why: "server down",
        });
        live.delete(relay);
        client.destroy();
        return;
      }
      relay.start(req, head, upstream);
    },
    cut(rng, mode) {
      const open = [...live].filter((r) => r.open);
      if (open.length === 0) return null;
      const busy = open.filter((r) => r.busy);
      const relay = rng.pick(busy.length > 0 && rng.chance(0.75) ? busy : open);
      if (mode === "reset") {
        stats.cuts++;
        relay.cutReset();
      } else {
        stats.silentCuts++;
        relay.cutSilent();
      }
      return relay.id;
    },
    stats,
    closeAll() {
      if (live.size === 0) return Promise.resolve();
      const done = new Promise<void>((resolve) => {
        allDone = resolve;
        // Destroyed sockets close at once; this only keeps a stuck one from holding the run up.
        setTimeout(resolve, 5_000).unref();
      });
      for (const relay of live) relay.destroy();
      return done;
    },
  };
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
