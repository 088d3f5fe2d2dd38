/**
 * RFC 9457 problem responses: one table gives every code its status and title, `problem()` builds the
 * `application/problem+json` response, and `ProblemError` carries one through Hono's `onError` (or, as a
 * plain body, back to an RPC caller).
 */
import { ERROR_CODES, type ErrorCode, PROBLEM_TYPE_BASE, type Problem } from "../client/src/protocol.ts";

const TITLES: Record<ErrorCode, string> = {
  lock_held: "Lock is held",
  lock_delay: "Lock is in its lock-delay after a lost holder",
  waiters_ahead: "Earlier waiters are queued",
  not_held: "Lease is not held",
  lease_ended: "Lease id was already used",
  limit_mismatch: "Semaphore limit does not match",
  upgrade_not_supported: "Upgrading a shared lease is not supported",
  wait_cancelled: "Wait was cancelled",
  reentrant_mismatch: "Reentrant acquire does not match the held lease",
  too_many_holds: "Too many reentrant holds",
  too_many_waiters: "Too many waiters",
  invalid_name: "Invalid lock name",
  invalid_body: "Invalid request body",
  malformed_json: "Malformed JSON",
  invalid_ttl: "Invalid ttlMs",
  invalid_wait: "Invalid waitMs",
  invalid_owner: "Invalid owner",
  invalid_lease_id: "Invalid leaseId",
  invalid_mode: "Invalid mode",
  invalid_limit: "Invalid limit",
  invalid_permits: "Invalid permits",
  permits_exceed_limit: "Permits exceed the limit",
  invalid_reentrant: "Invalid reentrant flag",
  holder_key_required: "holderKey required",
  invalid_holder_key: "Invalid holderKey",
  invalid_repoll: "Invalid repoll flag",
  invalid_query: "Invalid query parameter",
  invalid_lock_delay: "Invalid lockDelayMs",
  unsupported_media_type: "Unsupported media type",
  body_too_large: "Request body too large",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  unauthorized: "Unauthorized",
  forbidden: "Forbidden",
  forbidden_scope: "Forbidden for this lock name",
  auth_not_configured: "Authentication is not configured",
  unavailable: "Service temporarily unavailable",
  internal: "Internal error",
};

export interface ProblemInit {
  /** Extra members of the body (`retryAfterMs`, `reason`, ...). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** The RFC 9457 body of a problem: what HTTP sends as JSON and RPC returns as a value. */
export function problemBody(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  return {
    type: PROBLEM_TYPE_BASE + code,
    title: TITLES[code],
    status: ERROR_CODES[code],
    detail,
    code,
    ...extra,
  };
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
    return ERROR_CODES[this.code];
  }
  getResponse(): Response {
    return problem(this.code, this.detail, this.init);
  }
  /** The problem body alone, for an answer that is not HTTP (the RPC entrypoint). */
  body(): Problem {
    return problemBody(this.code, this.detail, this.init.extra);
  }
}
