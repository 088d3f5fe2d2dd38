/**
 * The edgelock wire contract (HTTP API v1): request and response shapes, error codes and limits.
 * Zero dependencies and no runtime imports, so the Worker, the lock object and the client library all
 * share one definition. It is not validation: the Worker's zod schemas enforce these limits.
 */

/** Shortest lease a client may ask for. */
export const MIN_TTL_MS = 100;
/** Longest lease a client may ask for (24 h). */
export const MAX_TTL_MS = 86_400_000;
/** Longest a single acquire request is held open; wait longer by re-polling with the same `leaseId`. */
export const MAX_WAIT_MS = 25_000;
/**
 * How long a queued waiter keeps its place after its request's wait ran out, so that a re-poll with the
 * same `leaseId` goes back to the same place. A waiter in this window is never granted; if it is at the
 * head of the queue, the lock stays free for it until the window closes.
 */
export const REPOLL_GRACE_MS = 3_000;
/**
 * How long a waiter whose request said `repoll: true` keeps its turn after that request's wait ran out:
 * long enough for the client's next request to arrive, short enough that a client that promised and
 * vanished delays the waiters behind it by well under a second. A waiter that did not promise keeps its
 * place for REPOLL_GRACE_MS but never holds up anyone behind it.
 */
export const REPOLL_RESERVE_MS = 500;
/** Waiters one lock will queue; more get 429 `too_many_waiters`. */
export const MAX_WAITERS = 1_000;
/** Largest semaphore `limit`. */
export const MAX_LIMIT = 10_000;
/** Longest lock-delay after a lost holder. */
export const MAX_LOCK_DELAY_MS = 60_000;
/** Lock names: 1–200 characters of `A–Z a–z 0–9 . _ - :`. */
export const LOCK_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
/** Lease ids are chosen by the client or the server: 16–128 characters of `A–Z a–z 0–9 _ -`. */
export const LEASE_ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
export const MAX_OWNER_LENGTH = 256;
/** Reentrant holds one lease may count; one more acquire gets 409 `too_many_holds`. */
export const MAX_HOLD_COUNT = 16;
/** Holders listed in a 409 `lock_held` / `lock_delay` / `waiters_ahead`; `holderCount` is the total. */
export const MAX_HOLDERS_IN_PROBLEM = 5;
/** Holders per page of `GET /v1/locks/{name}`; the next page is `?after=<nextAfter>`. */
export const HOLDERS_PAGE_SIZE = 100;
/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 8_192;

export const LOCK_MODES = ["exclusive", "shared"] as const;
export type LockMode = (typeof LOCK_MODES)[number];

export interface AcquireRequest {
  ttlMs: number;
  /** @default 0 (try once) */
  waitMs?: number;
  owner?: string;
  leaseId?: string;
  /** @default "exclusive" */
  mode?: LockMode;
  /** Makes the lock a counting semaphore with this many permits. */
  limit?: number;
  /** Permits this lease takes from a semaphore. @default 1 */
  permits?: number;
  /**
   * The same holder acquiring again while it holds gets the same lease and a higher hold count. The
   * holder is `holderKey` under the same API key, never the public `owner` label.
   */
  reentrant?: boolean;
  /**
   * The holder's secret identity for reentrancy (16–128 of `A–Z a–z 0–9 _ -`), required with
   * `reentrant: true`: e.g. one random value per process or thread. Never shown to anyone.
   */
  holderKey?: string;
  /**
   * The client will re-poll with the same `leaseId` as soon as this request's wait runs out, so the
   * waiter keeps its turn for REPOLL_RESERVE_MS after it. @default false
   */
  repoll?: boolean;
  /** When this lease is lost (expiry or force-release), the lock stays unavailable this long. @default 0 */
  lockDelayMs?: number;
}

export interface RenewRequest {
  leaseId: string;
  ttlMs?: number;
  /** `"shared"` downgrades an exclusive lease; upgrading is refused. */
  mode?: LockMode;
}

export interface ReleaseRequest {
  leaseId: string;
}

export interface Lease {
  name: string;
  leaseId: string;
  owner: string | null;
  token: number;
  ttlMs: number;
  /** Epoch milliseconds, by the server's clock: for display, never for deciding you still hold the lock. */
  expiresAt: number;
  /**
   * How long the lease lasts, counted from when this request reached the lock object (by its own clock).
   * The request was sent before that, so `(local time the request was sent) + validForMs` is a deadline
   * the lease cannot end before, with no trust in the server's clock. It is longer than `ttlMs` when the
   * request waited, and shorter when a retry collects a lease granted earlier.
   */
  validForMs: number;
  mode: LockMode;
  permits: number;
  holdCount: number;
  limit: number;
}

export interface ReleaseResponse {
  released: boolean;
  cancelled?: boolean;
  /** For a reentrant lease: holds left after this release (0 means the lock was freed). */
  holdCount?: number;
}

export interface HolderView {
  owner: string | null;
  token: number;
  expiresAt: number;
  mode: LockMode;
  permits: number;
  holdCount: number;
}

export interface LockView {
  name: string;
  held: boolean;
  kind: "mutex" | "rwlock" | "semaphore";
  /** One page of holders, in token order: at most HOLDERS_PAGE_SIZE. */
  holders: HolderView[];
  /** All holders, on every page. */
  holderCount: number;
  /** Pass as `?after=` for the next page of holders; null on the last page. */
  nextAfter: number | null;
  /** Requests waiting for the lock now (not counting waiters whose wait ran out). */
  waiters: number;
  lastToken: number;
  limit: number;
  permitsInUse: number;
  /** Epoch ms until which the lock is unavailable after a lost holder, or null. */
  lockDelayUntil: number | null;
}

export const NOT_HELD_REASONS = ["expired", "released", "unknown", "queued", "cancelled", "forced"] as const;
export type NotHeldReason = (typeof NOT_HELD_REASONS)[number];

/** Every `code` an error response can carry, with its HTTP status. */
export const ERROR_CODES = {
  lock_held: 409,
  lock_delay: 409,
  waiters_ahead: 409,
  not_held: 409,
  lease_ended: 409,
  limit_mismatch: 409,
  upgrade_not_supported: 409,
  wait_cancelled: 409,
  reentrant_mismatch: 409,
  too_many_holds: 409,
  too_many_waiters: 429,
  invalid_name: 400,
  invalid_body: 400,
  malformed_json: 400,
  invalid_ttl: 400,
  invalid_wait: 400,
  invalid_owner: 400,
  invalid_lease_id: 400,
  invalid_mode: 400,
  invalid_limit: 400,
  invalid_permits: 400,
  permits_exceed_limit: 400,
  invalid_reentrant: 400,
  holder_key_required: 400,
  invalid_holder_key: 400,
  invalid_repoll: 400,
  invalid_query: 400,
  invalid_lock_delay: 400,
  unsupported_media_type: 415,
  body_too_large: 413,
  not_found: 404,
  method_not_allowed: 405,
  unauthorized: 401,
  forbidden: 403,
  forbidden_scope: 403,
  auth_not_configured: 503,
  unavailable: 503,
  internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

/** RFC 9457 problem body; `code` is stable, extra members depend on the code. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  retryAfterMs?: number;
  reason?: NotHeldReason;
  /** The first MAX_HOLDERS_IN_PROBLEM holders; `holderCount` is the total. */
  holders?: HolderView[];
  holderCount?: number;
  position?: number;
  /** The queued request's own leaseId, with `position`: re-poll with it to keep the place. */
  leaseId?: string;
  limit?: number;
  [extra: string]: unknown;
}

export const PROBLEM_TYPE_BASE = "https://github.com/edgelock/edgelock/blob/main/docs/api.md#";

/** The answer of a Workers RPC call (worker/rpc.ts): the HTTP answer's body, or its problem body. */
export type RpcResult<T> = { ok: true; value: T } | { ok: false; problem: Problem };

/** What every RPC call names: the lock, and the API key it is made with (as `Authorization: Bearer`). */
export interface RpcCall {
  name: string;
  /** Checked exactly as over HTTP: role and lock-name prefixes. Omit only when auth is off. */
  apiKey?: string;
}

/**
 * The Workers RPC face of API v1, served by the `EdgelockRpc` entrypoint to Workers with a service
 * binding to it. Each method takes what its HTTP route takes (the same validation, the same outcomes)
 * and answers a `RpcResult` with the body or the problem the route would answer.
 */
export interface EdgelockRpcApi {
  acquire(call: RpcCall & { request: AcquireRequest }): Promise<RpcResult<Lease>>;
  renew(call: RpcCall & { request: RenewRequest }): Promise<RpcResult<Lease>>;
  release(call: RpcCall & { request: ReleaseRequest }): Promise<RpcResult<ReleaseResponse>>;
  /** `after`: the holders page cursor, as `?after=` over HTTP. */
  inspect(call: RpcCall & { after?: number }): Promise<RpcResult<LockView>>;
}
