/**
 * Shape checks for the service's answers, so a proxy's error page or a version mismatch becomes a clear
 * `bad_response` instead of `undefined` leaking into a lease. They check what the client relies on, not
 * every field (the server is the validator of record).
 */
import { ServiceError } from "./errors.ts";
import type { LockView, ReleaseResponse, Lease as WireLease } from "./protocol.ts";

/** The answer to `action` as `T`, or a `bad_response` (not retryable: the same answer would come again). */
export function expectAnswer<T>(value: unknown, check: (value: unknown) => value is T, action: string): T {
  if (check(value)) return value;
  throw new ServiceError("bad_response", `the service's ${action} answer is not edgelock's`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isWireLease(value: unknown): value is WireLease {
  return (
    isRecord(value) &&
    typeof value.name === "string" &&
    typeof value.leaseId === "string" &&
    Number.isSafeInteger(value.token) &&
    typeof value.ttlMs === "number" &&
    typeof value.expiresAt === "number" &&
    typeof value.validForMs === "number" &&
    typeof value.holdCount === "number" &&
    typeof value.permits === "number" &&
    typeof value.limit === "number" &&
    (value.mode === "exclusive" || value.mode === "shared") &&
    (value.owner === null || typeof value.owner === "string")
  );
}

export function isReleaseResponse(value: unknown): value is ReleaseResponse {
  return isRecord(value) && typeof value.released === "boolean";
}

export function isLockView(value: unknown): value is LockView {
  return (
    isRecord(value) &&
    typeof value.name === "string" &&
    typeof value.held === "boolean" &&
    Array.isArray(value.holders) &&
    typeof value.lastToken === "number"
  );
}
