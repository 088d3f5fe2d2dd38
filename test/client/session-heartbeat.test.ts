/**
 * The session socket's heartbeat, on a socket whose far end has gone silent (a pulled cable: no close, no
 * pong). No lock is involved, so the socket is a stand-in that records what is sent and answers only when
 * told to, and time is Vitest's fake clock: the rule is about when the client gives up, not about a server.
 */
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import type { WebSocketLike } from "../../client/src/index.ts";
import { SESSION_DEAD_AFTER_MS, SESSION_PING_MS, SESSION_TIMEOUT_MS } from "../../client/src/index.ts";
import { SessionConnection } from "../../client/src/session-connection.ts";

/** A socket that stays open and silent unless the test answers for it. */
function silentSocket() {
  const listeners = new Map<string, ((event: never) => void)[]>();
  const sent: string[] = [];
  let closed = false;
  const ws = {
    readyState: 1,
    send: (data: string) => sent.push(data),
    close: () => {
      closed = true;
    },
    addEventListener: (type: string, listener: (event: never) => void) => {
      listeners.set(type, [...(listeners.get(type) ?? []), listener]);
    },
  } as unknown as WebSocketLike;
  const receive = (data: string) => {
    for (const l of listeners.get("message") ?? []) l({ data } as never);
  };
  return { ws, sent, receive, isClosed: () => closed };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

it("pings every SESSION_PING_MS and declares the socket dead before the lock's silence limit", () => {
  const socket = silentSocket();
  const ended: string[] = [];
  const openedAt = Date.now();
  new SessionConnection(socket.ws, openedAt, { closed: (detail) => ended.push(detail) });

  vi.advanceTimersByTime(SESSION_PING_MS);
  expect(socket.sent).toEqual(["ping"]);
  // The first ping is answered: the lock has heard from us as late as that ping was sent.
  socket.receive("pong");
  const heardAt = Date.now();

  // From then on nothing is answered. The lock may close a session silent for SESSION_TIMEOUT_MS from
  // the last ping it got; the client must give up well before that.
  vi.advanceTimersByTime(SESSION_DEAD_AFTER_MS - 1_000);
  expect(ended).toEqual([]);
  vi.advanceTimersByTime(1_000);
  expect(ended).toHaveLength(1);
  expect(ended[0]).toContain("no answer to pings");
  expect(socket.isClosed()).toBe(true);
  expect(Date.now()).toBeLessThanOrEqual(heardAt + SESSION_TIMEOUT_MS - SESSION_PING_MS);
  expect(socket.sent.filter((f) => f === "ping").length).toBeGreaterThanOrEqual(2);
});

it("stays alive while pongs come back", () => {
  const socket = silentSocket();
  const ended: string[] = [];
  new SessionConnection(socket.ws, Date.now(), { closed: (detail) => ended.push(detail) });
  for (let i = 0; i < 12; i++) {
    vi.advanceTimersByTime(SESSION_PING_MS);
    socket.receive("pong");
  }
  expect(ended).toEqual([]);
  expect(socket.isClosed()).toBe(false);
});
