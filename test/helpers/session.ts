/** A session client for runtime tests: opens `GET /v1/locks/{name}/session` through the Worker's real entry. */
import { exports } from "cloudflare:workers";

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary frame members
export type Frame = Record<string, any>;

export interface TestSession {
  /** Sends a frame as JSON (or a raw string as is). */
  send(frame: Frame | string): void;
  /** The next frame that matches, waiting up to `timeoutMs`; frames that do not match stay queued. */
  next(match?: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Every frame received so far, in order. */
  readonly received: Frame[];
  readonly closed: Promise<void>;
  close(): void;
}

export async function openSession(
  name: string,
  headers: Record<string, string> = {},
  fetcher: (url: string, init: RequestInit) => Promise<Response> = (u, i) => exports.default.fetch(u, i),
): Promise<TestSession> {
  const res = await fetcher(`http://edgelock.test/v1/locks/${name}/session`, {
    headers: { upgrade: "websocket", ...headers },
  });
  const ws = res.webSocket;
  if (ws === null) throw new Error(`no upgrade (${res.status}): ${await res.text()}`);
  ws.accept();
  const received: Frame[] = [];
  const unread: Frame[] = [];
  let wake: (() => void) | null = null;
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(String(e.data)) as Frame;
    received.push(frame);
    unread.push(frame);
    wake?.();
  });
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  return {
    received,
    closed,
    send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    close: () => ws.close(1000, "bye"),
    async next(match = () => true, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = unread.findIndex(match);
        if (i !== -1) return unread.splice(i, 1)[0] as Frame;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching frame; got ${JSON.stringify(received)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, left);
        });
      }
    },
  };
}

/** Opens a session on `name` and acquires through it (frame id 1, `fields` on top): the session and its answer. */
export async function openAndAcquire(name: string, fields: Frame): Promise<[TestSession, Frame]> {
  const s = await openSession(name);
  s.send({ type: "acquire", id: 1, ...fields });
  return [s, await s.next((f) => f.id === 1)];
}
