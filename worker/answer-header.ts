/**
 * Setting a header on the answer after `next()`, as the request-id, no-store and insecure-mode middlewares do.
 * Hono's `c.header` copies the whole Response once it is final, once per call: up to four per /v1 answer.
 * Every answer this app builds (`c.json`, `c.body`, problems) has mutable headers, so they are set in place;
 * only a Response from elsewhere (a `fetch`), whose headers are immutable, is copied, through Hono.
 * A session's upgrade (101) is left as the runtime made it: a copy would lose its WebSocket.
 */
import type { Context } from "hono";

export function setAnswerHeader(c: Context, name: string, value: string): void {
  if (c.res.status === 101) return;
  try {
    c.res.headers.set(name, value);
  } catch {
    c.header(name, value); // immutable headers (TypeError): Hono copies the Response and sets it there
  }
}
