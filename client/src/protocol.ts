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
/** Longest a session's acquire may wait: a session waiter is pushed its grant, so it has no per-request cap. */
export const MAX_SESSION_WAIT_MS = 86_400_000;
/** A session client sends the text frame `ping` this often; the lock object answers `pong` without waking. */
export const SESSION_PING_MS = 5_000;
/** A session silent this long (no frame, no ping: a pulled cable) is closed, and what it held ends. */
export const SESSION_TIMEOUT_MS = 15_000;
/** Sessions one lock will keep open; more are refused with 429 `too_many_sessions` before the upgrade. */
export const MAX_SESSIONS = 1_000;
/** The subprotocol a session speaks; a browser offers its key as a second one, `bearer.<key>`. */
export const SESSION_PROTOCOL = "edgelock.v1";

/** Waiters one lock will queue; more get 429 `too_many_waiters`. */
export const MAX_WAITERS = 1_000;
/** Largest semaphore `limit`. */
export const MAX_LIMIT = 10_000;
/** Longest lock-delay after a lost holder. */
export const MAX_LOCK_DELAY_MS = 60_000;
/** Lock names: 1–200 characters of `A–Z a–z 0–9 . _ - :`. */
export const LOCK_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
/** What a lock name must be, said once for every place that refuses one. */
export const LOCK_NAME_RULE = "a lock name is 1–200 characters of A–Z a–z 0–9 . _ - :";
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
/** What a lock is, as `GET` says: a semaphore by its limit, a read-write lock while shared leases are held. */
export const LOCK_KINDS = ["mutex", "rwlock", "semaphore"] as const;
export type LockKind = (typeof LOCK_KINDS)[number];

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
  /** A queued leaseId left the queue (nothing was released). */
  cancelled?: true;
  /** For a reentrant lease: holds left after this release (0 means the lock was freed). */
  holdCount?: number;
}

/** A session frame's id, chosen by the client and echoed in its answer: an integer, or ≤ 64 characters. */
export type SessionFrameId = number | string;

/**
 * What a session client sends (`GET /v1/locks/{name}/session`, JSON text frames): the HTTP bodies with a
 * `type` and an `id`. A session's acquire may wait up to MAX_SESSION_WAIT_MS and is never re-polled.
 */
export type SessionClientFrame =
  | ({ type: "acquire"; id: SessionFrameId } & Omit<AcquireRequest, "repoll">)
  | ({ type: "renew"; id: SessionFrameId } & RenewRequest)
  | ({ type: "release"; id: SessionFrameId } & ReleaseRequest)
  | { type: "watch"; id: SessionFrameId };

/** Why a session's lease ended behind its back, as its `lost` frame says. */
export interface SessionLostFrame {
  type: "lost";
  leaseId: string;
  reason: NotHeldReason;
  /** The admin key's name, for `forced`. */
  by?: string;
}

/**
 * What the lock pushes to a session: answers (`granted` for acquire and renew, `released`, `error` with the
 * problem's members and its `type` URI as `problemType`), `lost`, and after `watch` the lock's `state`.
 * Besides these JSON frames, the text frame `pong` answers each `ping`.
 */
export type SessionServerFrame =
  | ({ type: "granted"; id: SessionFrameId } & Lease)
  | ({ type: "released"; id: SessionFrameId } & ReleaseResponse)
  | ({ type: "error"; id: SessionFrameId | null; problemType: string } & Omit<Problem, "type">)
  | SessionLostFrame
  | ({ type: "state"; id?: SessionFrameId } & LockView);

export interface ForceReleaseResult {
  name: string;
  forced: true;
  /** Leases that were ended. */
  count: number;
  /** The name of the admin key that did it. */
  by: string;
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
  kind: LockKind;
  /** One page of holders, in token order: at most HOLDERS_PAGE_SIZE. */
  holders: HolderView[];
  /** All holders, on every page. */
  holderCount: number;
  /** Pass as `?after=` for the next page of holders; null on the last page. */
  nextAfter: number | null;
  /** Requests waiting for the lock now (not counting waiters whose wait ran out). */
  waiters: number;
  /** The first QUEUE_VIEW_SIZE of those waiters, in queue order; `waiters` counts them all. */
  queue: WaiterView[];
  lastToken: number;
  limit: number;
  permitsInUse: number;
  /** Epoch ms until which the lock is unavailable after a lost holder, or null. */
  lockDelayUntil: number | null;
}

/** Waiters listed in a `GET` (and a `watch` push): the first ones waiting now, in queue order. */
export const QUEUE_VIEW_SIZE = 20;

/** What anyone may see of a waiter that is waiting now: never its leaseId, holderKey or key name. */
export interface WaiterView {
  owner: string | null;
  mode: LockMode;
  permits: number;
  /** Epoch ms when it joined the queue (a re-poll keeps it). */
  waitingSince: number;
}

/**
 * What a lock's history records (`GET /v1/locks/{name}/events`): a lease granted (or one more reentrant
 * hold), renewed (a run of renewals of one lease is one row), released (a hold, or the whole lease),
 * expired, forced out (by an admin key), ended because its session closed; a waiter that gave up
 * (`timed_out`: its wait ran out and no re-poll came), left by a release of its leaseId (`cancelled`) or
 * with its session (`session_closed`).
 */
export const LOCK_EVENT_KINDS = [
  "granted",
  "renewed",
  "released",
  "expired",
  "forced",
  "session_closed",
  "timed_out",
  "cancelled",
] as const;
export type LockEventKind = (typeof LOCK_EVENT_KINDS)[number];
/** A lock keeps at most this many events... */
export const HISTORY_MAX_EVENTS = 1_000;
/** ...and none older than this (7 days). */
export const HISTORY_MAX_AGE_MS = 7 * 86_400_000;
/** Events per page of `GET /v1/locks/{name}/events` unless `limit` says otherwise, and the most it may say. */
export const EVENTS_PAGE_SIZE = 50;
export const MAX_EVENTS_PAGE_SIZE = 200;

/** One event of a lock's history. Public fields only: never a leaseId, holderKey or the holder's key name. */
export interface LockEvent {
  /** Increases with every event of the lock: pages go on with `?before=<id>`. */
  id: number;
  /** Epoch ms when it took effect (an expiry: the lease's `expiresAt`; a give-up: when its kept place lapsed). */
  at: number;
  kind: LockEventKind;
  owner: string | null;
  /** The lease's fencing token; null for a waiter that was never granted. */
  token: number | null;
  mode: LockMode;
  permits: number;
  /** Holds the lease counts after the event (granted, released); null otherwise. */
  holdCount: number | null;
  /** How long it waited before it was granted (0: at once) or left the queue; null for other events. */
  waitMs: number | null;
  /** How long the lease was held, when the event ended it; null otherwise. */
  holdMs: number | null;
  /** When the lease ends unless renewed (granted, renewed); null otherwise. */
  expiresAt: number | null;
  /** Renewals this row stands for (renewed); null otherwise. */
  renewals: number | null;
  /** The admin key that forced the lease out (forced); null otherwise. */
  by: string | null;
}

export interface LockEvents {
  name: string;
  /** Newest first. */
  events: LockEvent[];
  /** Pass as `?before=` for the next (older) page; null on the last. */
  nextBefore: number | null;
  /** The lock object's clock when it answered (epoch ms), to show times against. */
  now: number;
}

/** `GET /v1/locks/{name}/tokens/{token}`: whether a fencing token belongs to a lease that holds the lock now. */
export interface TokenCheck {
  name: string;
  token: number;
  held: boolean;
  /** The lease that token belongs to, while it holds the lock; else null. */
  holder: HolderView | null;
  lastToken: number;
}

/** Locks listed per page of `GET /v1/locks` unless `limit` says otherwise, and the most it may say. */
export const DIRECTORY_PAGE_SIZE = 100;
export const MAX_DIRECTORY_PAGE_SIZE = 500;
/**
 * How long a lock waits after a change before it reports to the directory: changes within it are one
 * report. Entries lag their locks by about this much (plus delivery).
 */
export const DIRECTORY_REPORT_DELAY_MS = 250;

/** A lock that is held or has waiters, as the directory last heard from it. */
export interface DirectoryEntry {
  name: string;
  kind: LockKind;
  holderCount: number;
  waiters: number;
  /** Epoch ms: the earliest grant or wait among what it holds or queues now. */
  since: number;
  /** When the lock reported this (epoch ms, the lock's clock). */
  reportedAt: number;
  /** Unless the lock reports again, the entry is dropped at this instant (its leases' and waits' end). */
  until: number;
}

export interface LockDirectory {
  prefix: string;
  /** In name order. */
  locks: DirectoryEntry[];
  /** Pass as `?after=` for the next page; null on the last. */
  nextAfter: string | null;
  /** How far behind its locks the directory usually is (ms): it is an index, not the locks themselves. */
  lagMs: number;
  now: number;
}

export const NOT_HELD_REASONS = [
  "expired",
  "released",
  "unknown",
  "queued",
  "cancelled",
  "forced",
  "session_closed",
] as const;
export type NotHeldReason = (typeof NOT_HELD_REASONS)[number];

/**
 * Every `code` an error response can carry, with its HTTP status and the problem's title: the one table
 * the server answers from and the clients read.
 */
export const PROBLEMS = {
  lock_held: { status: 409, title: "Lock is held" },
  lock_delay: { status: 409, title: "Lock is in its lock-delay after a lost holder" },
  waiters_ahead: { status: 409, title: "Earlier waiters are queued" },
  not_held: { status: 409, title: "Lease is not held" },
  lease_ended: { status: 409, title: "Lease id was already used" },
  limit_mismatch: { status: 409, title: "Semaphore limit does not match" },
  upgrade_not_supported: { status: 409, title: "Upgrading a shared lease is not supported" },
  wait_cancelled: { status: 409, title: "Wait was cancelled" },
  reentrant_mismatch: { status: 409, title: "Reentrant acquire does not match the held lease" },
  too_many_holds: { status: 409, title: "Too many reentrant holds" },
  too_many_waiters: { status: 429, title: "Too many waiters" },
  too_many_sessions: { status: 429, title: "Too many sessions" },
  invalid_name: { status: 400, title: "Invalid lock name" },
  invalid_body: { status: 400, title: "Invalid request body" },
  malformed_json: { status: 400, title: "Malformed JSON" },
  invalid_ttl: { status: 400, title: "Invalid ttlMs" },
  invalid_wait: { status: 400, title: "Invalid waitMs" },
  invalid_owner: { status: 400, title: "Invalid owner" },
  invalid_lease_id: { status: 400, title: "Invalid leaseId" },
  invalid_mode: { status: 400, title: "Invalid mode" },
  invalid_limit: { status: 400, title: "Invalid limit" },
  invalid_permits: { status: 400, title: "Invalid permits" },
  permits_exceed_limit: { status: 400, title: "Permits exceed the limit" },
  invalid_reentrant: { status: 400, title: "Invalid reentrant flag" },
  holder_key_required: { status: 400, title: "holderKey required" },
  invalid_holder_key: { status: 400, title: "Invalid holderKey" },
  invalid_repoll: { status: 400, title: "Invalid repoll flag" },
  invalid_query: { status: 400, title: "Invalid query parameter" },
  invalid_lock_delay: { status: 400, title: "Invalid lockDelayMs" },
  upgrade_required: { status: 426, title: "WebSocket upgrade required" },
  invalid_frame: { status: 400, title: "Invalid session frame" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  body_too_large: { status: 413, title: "Request body too large" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  forbidden_scope: { status: 403, title: "Forbidden for this lock name" },
  auth_not_configured: { status: 503, title: "Authentication is not configured" },
  unavailable: { status: 503, title: "Service temporarily unavailable" },
  internal: { status: 500, title: "Internal error" },
} as const;
export type ErrorCode = keyof typeof PROBLEMS;

/** Each code's HTTP status, derived from PROBLEMS. */
export const ERROR_CODES = Object.fromEntries(
  Object.entries(PROBLEMS).map(([code, { status }]) => [code, status]),
) as { readonly [C in ErrorCode]: (typeof PROBLEMS)[C]["status"] };

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
