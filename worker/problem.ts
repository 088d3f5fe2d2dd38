/**
 * RFC 9457 problems: the body of a code's problem (status and title from the one table in protocol.ts),
 * the `application/problem+json` response that carries it over HTTP, and `ProblemError`, which carries one
 * through Hono's `onError` (shaped like Hono's `HTTPException`). Other transports send the same body.
 */
import { type ErrorCode, PROBLEM_TYPE_BASE, PROBLEMS, type Problem } from "../client/src/protocol.ts";

export interface ProblemInit {
  /** Extra members of the body (`retryAfterMs`, `reason`, ...). */
  extra?: Record<string, unknown>;
  /** HTTP headers that go with it (`Retry-After`, `Allow`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

export function problemBody(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const { status, title } = PROBLEMS[code];
  return { type: PROBLEM_TYPE_BASE + code, title, status, detail, code, ...extra };
}

export function problem(code: ErrorCode, detail: string, init: ProblemInit = {}): Response {
  const body = problemBody(code, detail, init.extra);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json", ...init.headers },
  });
}

/** Thrown to end a request with a problem; shaped like Hono's `HTTPException`. */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly init: ProblemInit = {},
  ) {
    super(detail);
  }
  get status(): number {
    return PROBLEMS[this.code].status;
  }
  /** The problem's body, for any transport. */
  body(): Problem {
    return problemBody(this.code, this.detail, this.init.extra);
  }
  getResponse(): Response {
    return problem(this.code, this.detail, this.init);
  }
}
