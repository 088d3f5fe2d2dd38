/**
 * RFC 9457 problem responses: one table gives every code its status and title, `problem()` builds the
 * `application/problem+json` response, and `ProblemError` carries one through Hono's `onError`.
 */
import { type ErrorCode, PROBLEM_TYPE_BASE, PROBLEMS } from "../client/src/protocol.ts";

export interface ProblemInit {
  /** Extra members of the body (`retryAfterMs`, `reason`, ...). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export function problem(code: ErrorCode, detail: string, init: ProblemInit = {}): Response {
  const { status, title } = PROBLEMS[code];
  const body = {
    type: PROBLEM_TYPE_BASE + code,
    title,
    status,
    detail,
    code,
    ...init.extra,
  };
  return new Response(JSON.stringify(body), {
    status,
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
  getResponse(): Response {
    return problem(this.code, this.detail, this.init);
  }
}
