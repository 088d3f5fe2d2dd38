/**
 * The pure parts of the client: the code → class table, cross-realm detection, and duration parsing.
 * (Behaviour against the service is in client.test.ts and test/e2e.)
 */
import { describe, expect, it } from "vitest";
import {
  AuthError,
  EdgelockError,
  ERROR_CODES,
  type ErrorCode,
  errorFromProblem,
  isEdgelockError,
  isRetryable,
  LeaseLostError,
  LockHeldError,
  parseDuration,
  ServiceError,
  ValidationError,
} from "../../client/src/index.ts";

function problem(code: ErrorCode, extra: Record<string, unknown> = {}) {
  return { type: "t", title: code, status: ERROR_CODES[code], detail: `detail of ${code}`, code, ...extra };
}

describe("errorFromProblem", () => {
  it.each([
    ["lock_held", LockHeldError],
    ["lock_delay", LockHeldError],
    ["waiters_ahead", LockHeldError],
    ["too_many_waiters", LockHeldError],
    ["not_held", LeaseLostError],
    ["lease_ended", LeaseLostError],
    ["wait_cancelled", LeaseLostError],
    ["invalid_ttl", ValidationError],
    ["limit_mismatch", ValidationError],
    ["body_too_large", ValidationError],
    ["unauthorized", AuthError],
    ["forbidden", AuthError],
    ["forbidden_scope", AuthError],
    ["unavailable", ServiceError],
    ["internal", ServiceError],
  ] as const)("maps %s to %s", (code, cls) => {
    const error = errorFromProblem(problem(code), ERROR_CODES[code]);
    expect(error).toBeInstanceOf(cls);
    expect(error).toMatchObject({ code, status: ERROR_CODES[code], detail: `detail of ${code}` });
  });

  it("keeps the evidence: retryAfterMs, holder, position and reason", () => {
    const holder = { owner: "a", token: 3, expiresAt: 1, mode: "exclusive", permits: 1, holdCount: 1 };
    const held = errorFromProblem(
      problem("lock_held", { retryAfterMs: 1200, holders: [holder], position: 2 }),
      409,
    );
    expect(held).toMatchObject({ retryAfterMs: 1200, holder, position: 2, holderCount: 1 });
    const queued = errorFromProblem(
      problem("waiters_ahead", { holders: [holder], holderCount: 9, position: 1, leaseId: "q".repeat(16) }),
      409,
    );
    expect(queued).toMatchObject({ holderCount: 9, position: 1, leaseId: "q".repeat(16) });
    const lost = errorFromProblem(problem("not_held", { reason: "expired" }), 409);
    expect(lost).toMatchObject({ reason: "expired" });
  });

  it("falls back on the status for codes it does not know", () => {
    const unknown = { ...problem("internal"), code: "brand_new" as ErrorCode };
    expect(errorFromProblem(unknown, 401)).toBeInstanceOf(AuthError);
    expect(errorFromProblem(unknown, 400)).toBeInstanceOf(ValidationError);
    expect(errorFromProblem(unknown, 502)).toBeInstanceOf(ServiceError);
  });
});

describe("isRetryable", () => {
  it("retries only transient failures, decided by code", () => {
    expect(isRetryable(new ServiceError("network_error", "reset"))).toBe(true);
    expect(isRetryable(errorFromProblem(problem("unavailable"), 503))).toBe(true);
    // The server's own bug is not retried blindly, nor is any answer another try would repeat.
    expect(isRetryable(errorFromProblem(problem("internal"), 500))).toBe(false);
    expect(isRetryable(new ServiceError("bad_response", "a proxy page", { status: 200 }))).toBe(false);
    expect(isRetryable(errorFromProblem(problem("lock_held"), 409))).toBe(false);
    expect(isRetryable(errorFromProblem(problem("invalid_ttl"), 400))).toBe(false);
    // Not ours (a caller's abort reason, say): never retried.
    expect(isRetryable(new Error("aborted"))).toBe(false);
    expect(isRetryable({ ...problem("internal"), code: "brand_new" })).toBe(false);
  });
});

describe("isEdgelockError", () => {
  it("recognises errors from another realm by name and code", () => {
    const foreign = Object.assign(new Error("x"), { name: "LockHeldError", code: "lock_held" });
    expect(foreign instanceof EdgelockError).toBe(false);
    expect(isEdgelockError(foreign)).toBe(true);
    expect(isEdgelockError(new Error("plain"))).toBe(false);
    expect(isEdgelockError({ name: "LockHeldError" })).toBe(false);
  });
});

describe("parseDuration", () => {
  it.each([
    [250, 250],
    ["250", 250],
    ["500ms", 500],
    ["1.5s", 1_500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["2h", 7_200_000],
  ] as const)("reads %s as %i ms", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, "", "5 parsecs", "1d", "-3s"])("refuses %s", (input) => {
    expect(() => parseDuration(input as string)).toThrow(ValidationError);
  });
});
