/**
 * The client's errors: one base class, `EdgelockError`, and one subclass per way a call can fail, picked
 * from the server's problem `code` by a single table. Errors carry their evidence (`retryAfterMs`, the
 * holder, the `reason` a lease was lost). Client-side failures (bad arguments, an unreachable service)
 * use the same classes with client-only codes, so callers branch on one hierarchy.
 */
import type { ErrorCode, HolderView, NotHeldReason, Problem } from "./protocol.ts";

/** Codes the client produces itself, for failures that never got a problem body from the server. */
export const CLIENT_ERROR_CODES = {
  /** An argument was refused before any request was sent. */
  invalid_argument: "invalid_argument",
  /** The service could not be reached (DNS, connection, timeout) after every retry. */
  network_error: "network_error",
  /** The service answered something that is not edgelock's API (a proxy's HTML page, say). */
  bad_response: "bad_response",
  /** Renewals kept failing until the client's conservative deadline for the lease passed. */
  lease_expired: "lease_expired",
  /** The caller's own deadline left no time for another renewal. */
  deadline: "deadline",
  /** A downstream store refused a fenced write: it has seen a newer token. */
  fenced: "fenced",
  /**
   * The service granted a lease other than the one asked for (another mode or number of permits), e.g.
   * a reentrant acquire answered with the hold this holder already has. The hold was given back.
   */
  grant_mismatch: "grant_mismatch",
} as const;
export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/** Why a lease is no longer held: the server's `reason`, or a client-side cause. */
export type LostReason = NotHeldReason | "deadline";

export interface EdgelockErrorOptions {
  /** HTTP status of the answer, when there was one. */
  status?: number;
  cause?: unknown;
}

/** Base class of every error this package throws. Check with `isEdgelockError()` across realms. */
export class EdgelockError extends Error {
  override name: string = "EdgelockError";
  /** The server's problem `code`, or a client code (`CLIENT_ERROR_CODES`). */
  readonly code: ErrorCode | ClientErrorCode;
  /** HTTP status, or `undefined` when no answer arrived. */
  readonly status: number | undefined;
  /** The problem's `detail` (or the client's explanation). */
  readonly detail: string;

  constructor(code: ErrorCode | ClientErrorCode, detail: string, options: EdgelockErrorOptions = {}) {
    super(`${code}: ${detail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = detail;
    this.status = options.status;
  }
}

/**
 * The lock is busy and the wait, if any, ran out: held by others (`lock_held`), closed by a lost holder's
 * lock-delay (`lock_delay`), promised to earlier waiters (`waiters_ahead`), or its queue is full
 * (`too_many_waiters`).
 */
export class LockHeldError extends EdgelockError {
  override name = "LockHeldError";
  /** Server's estimate of when trying again may succeed. */
  readonly retryAfterMs: number;
  /** The first current holder (never its leaseId), or `null` when the lock is only closed or queued. */
  readonly holder: HolderView | null;
  readonly holders: readonly HolderView[];
  /** All holders; `holders` lists only the first few. */
  readonly holderCount: number;
  /** This request's place in the queue, when it was queued (re-poll with `leaseId` to keep it). */
  readonly position: number | undefined;
  /** The queued request's leaseId, when it was queued: the one to re-poll with. */
  readonly leaseId: string | undefined;

  constructor(problem: Problem, status = 409) {
    super(problem.code, problem.detail, { status });
    this.retryAfterMs = typeof problem.retryAfterMs === "number" ? problem.retryAfterMs : 0;
    this.holders = Array.isArray(problem.holders) ? problem.holders : [];
    this.holder = this.holders[0] ?? null;
    this.holderCount = typeof problem.holderCount === "number" ? problem.holderCount : this.holders.length;
    this.position = typeof problem.position === "number" ? problem.position : undefined;
    this.leaseId = typeof problem.leaseId === "string" ? problem.leaseId : undefined;
  }
}

/** The lease is gone: renew/release said `not_held`, or the client could not renew it in time. */
export class LeaseLostError extends EdgelockError {
  override name = "LeaseLostError";
  readonly reason: LostReason;

  constructor(
    code: ErrorCode | ClientErrorCode,
    reason: LostReason,
    detail: string,
    options: EdgelockErrorOptions = {},
  ) {
    super(code, detail, options);
    this.reason = reason;
  }
}

/** The request was refused as invalid (400s, 413, 415, `limit_mismatch`, `upgrade_not_supported`). */
export class ValidationError extends EdgelockError {
  override name = "ValidationError";
}

/** The API key is missing, wrong, or lacks the scope (401, 403). */
export class AuthError extends EdgelockError {
  override name = "AuthError";
}

/** The service failed or could not be reached (5xx, network errors, answers that are not the API). */
export class ServiceError extends EdgelockError {
  override name = "ServiceError";
  /** From a `Retry-After`/`retryAfterMs`, when the service gave one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode | ClientErrorCode,
    detail: string,
    options: EdgelockErrorOptions & { retryAfterMs?: number } = {},
  ) {
    super(code, detail, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

type ErrorKind = "held" | "lost" | "invalid" | "auth" | "service";

/** The one code → class table. `Record` makes a new server code a compile error here until it is placed. */
const KIND_BY_CODE: Record<ErrorCode, ErrorKind> = {
  lock_held: "held",
  lock_delay: "held",
  waiters_ahead: "held",
  too_many_waiters: "held",
  too_many_sessions: "held",
  not_held: "lost",
  lease_ended: "lost",
  wait_cancelled: "lost",
  limit_mismatch: "invalid",
  upgrade_not_supported: "invalid",
  reentrant_mismatch: "invalid",
  too_many_holds: "invalid",
  invalid_name: "invalid",
  invalid_body: "invalid",
  malformed_json: "invalid",
  invalid_ttl: "invalid",
  invalid_wait: "invalid",
  invalid_owner: "invalid",
  invalid_lease_id: "invalid",
  invalid_mode: "invalid",
  invalid_limit: "invalid",
  invalid_permits: "invalid",
  permits_exceed_limit: "invalid",
  invalid_reentrant: "invalid",
  holder_key_required: "invalid",
  invalid_holder_key: "invalid",
  invalid_repoll: "invalid",
  invalid_query: "invalid",
  invalid_lock_delay: "invalid",
  upgrade_required: "invalid",
  invalid_frame: "invalid",
  unsupported_media_type: "invalid",
  body_too_large: "invalid",
  unauthorized: "auth",
  forbidden: "auth",
  forbidden_scope: "auth",
  auth_not_configured: "auth",
  not_found: "service",
  method_not_allowed: "service",
  unavailable: "service",
  internal: "service",
};

/** Builds the typed error for a problem answer. Unknown codes fall back on the HTTP status. */
export function errorFromProblem(
  problem: Problem,
  status: number,
  retryAfterHeaderMs?: number,
): EdgelockError {
  const kind: ErrorKind = Object.hasOwn(KIND_BY_CODE, problem.code)
    ? KIND_BY_CODE[problem.code]
    : kindByStatus(status);
  switch (kind) {
    case "held":
      return new LockHeldError(
        problem.retryAfterMs === undefined && retryAfterHeaderMs !== undefined
          ? { ...problem, retryAfterMs: retryAfterHeaderMs }
          : problem,
        status,
      );
    case "lost": {
      const reason = problem.code === "wait_cancelled" ? "cancelled" : (problem.reason ?? "unknown");
      return new LeaseLostError(problem.code, reason, problem.detail, { status });
    }
    case "invalid":
      return new ValidationError(problem.code, problem.detail, { status });
    case "auth":
      return new AuthError(problem.code, problem.detail, { status });
    case "service": {
      const retryAfterMs = problem.retryAfterMs ?? retryAfterHeaderMs;
      return new ServiceError(problem.code, problem.detail, {
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    default:
      return assertNever(kind);
  }
}

function kindByStatus(status: number): ErrorKind {
  if (status === 401 || status === 403) return "auth";
  if (status === 409 || status === 429) return "held";
  if (status >= 400 && status < 500) return "invalid";
  return "service";
}

const ERROR_NAMES = new Set([
  "EdgelockError",
  "LockHeldError",
  "LeaseLostError",
  "ValidationError",
  "AuthError",
  "ServiceError",
]);

/**
 * True for any error from this package, also when it comes from another realm or another copy of the
 * package (where `instanceof` fails): it checks `name` and `code` as well.
 */
export function isEdgelockError(value: unknown): value is EdgelockError {
  if (value instanceof EdgelockError) return true;
  if (typeof value !== "object" || value === null) return false;
  const { name, code } = value as { name?: unknown; code?: unknown };
  return typeof name === "string" && ERROR_NAMES.has(name) && typeof code === "string";
}

function assertNever(value: never): never {
  throw new Error(`unexpected ${String(value)}`);
}
