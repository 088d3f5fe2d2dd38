/**
 * edgelock-client: the public API. Re-exports only; see client.ts for the entry point.
 */
export {
  type AcquireOptions,
  type ClientOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_TTL_MS,
  EdgelockClient,
  newLeaseId,
  type WithLockOptions,
  type WithLocksOptions,
} from "./client.ts";
export { type Duration, type DurationUnit, formatDuration, parseDuration } from "./duration.ts";
export {
  AuthError,
  CLIENT_ERROR_CODES,
  type ClientErrorCode,
  EdgelockError,
  errorFromProblem,
  isEdgelockError,
  LeaseLostError,
  LockHeldError,
  type LostReason,
  ServiceError,
  ValidationError,
} from "./errors.ts";
export { FencedWriteError, fencedWrite, type WriteResult } from "./fence.ts";
export {
  DRIFT_FACTOR,
  type KeepAliveOptions,
  Lease,
  MIN_DEADLINE_MARGIN_MS,
  MIN_DRIFT_MS,
  RENEW_AT_FRACTION_LEFT,
} from "./lease.ts";
export { ReadWriteLock, Semaphore } from "./primitives.ts";
export type {
  AcquireRequest,
  EdgelockRpcApi,
  ErrorCode,
  HolderView,
  LockMode,
  LockView,
  NotHeldReason,
  Problem,
  ReleaseResponse,
  RpcCall,
  RpcResult,
} from "./protocol.ts";
export { ERROR_CODES, LOCK_NAME_PATTERN, MAX_TTL_MS, MAX_WAIT_MS, MIN_TTL_MS } from "./protocol.ts";
export {
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_MIN_DELAY_MS,
  DEFAULT_RETRIES,
  isRetryable,
  RETRYABLE,
  type RetryOptions,
} from "./retry.ts";
export type { FetchLike } from "./transport.ts";
