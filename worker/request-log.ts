/**
 * Structured logs: a request id for every request (Cloudflare's `cf-ray` when there is one, else a caller's
 * well-formed `x-request-id`, else a new one), answered as `x-request-id`, and one JSON line per request
 * with its route, status, problem code, key name, lock and duration. Never a key, a leaseId, a body or a
 * header. `EDGELOCK_REQUEST_LOG=off` drops the per-request line (ids and other log lines stay).
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { setAnswerHeader } from "./answer-header.ts";
import type { AppEnv } from "./settings.ts";

export const REQUEST_ID_HEADER = "x-request-id";
/** A caller's request id is taken as is only if it cannot forge or break a log line. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A JSON log line; `console.log` in a Worker is what Workers Logs and `wrangler tail` collect. */
export function logJson(level: "info" | "warn" | "error", fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export function requestLog(): MiddlewareHandler<AppEnv> {
  return async function requestLog(c, next) {
    const started = Date.now();
    const offered = c.req.header(REQUEST_ID_HEADER);
    const requestId =
      c.req.header("cf-ray") ??
      (offered !== undefined && REQUEST_ID.test(offered) ? offered : crypto.randomUUID());
    c.set("requestId", requestId);
    await next();
    setAnswerHeader(c, REQUEST_ID_HEADER, requestId);
    const vars = c.env as unknown as Record<string, unknown>;
    if (vars.EDGELOCK_REQUEST_LOG === "off") return;
    const status = c.res.status;
    logJson(status >= 500 ? "error" : "info", {
      event: "request",
      requestId,
      method: c.req.method,
      route: routePath(c, -1),
      path: c.req.path,
      status,
      code: c.get("problemCode") ?? null,
      key: c.get("principal")?.name ?? null,
      lock: c.get("lockName") ?? null,
      ms: Date.now() - started,
    });
  };
}
