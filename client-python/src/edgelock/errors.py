"""The client's errors: one base class, `EdgelockError`, and one subclass per way a call can fail, picked from
the server's problem `code` by the single table `KIND_BY_CODE` (unknown codes fall back on the HTTP status).
Errors carry their evidence (`retry_after`, the holder, the `reason` a lease was lost). Failures that never
got a problem body (bad arguments, an unreachable service) use the same classes with client-only codes.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .protocol import ERROR_CODES

#: Codes the client produces itself, for failures that never got a problem body from the server.
CLIENT_ERROR_CODES = (
    "invalid_argument",  # an argument was refused before any request was sent
    "network_error",  # the service could not be reached (DNS, connection, timeout) after every retry
    "bad_response",  # the answer is not edgelock's API (a proxy's HTML page), or does not fit the request
    "lease_expired",  # renewals kept failing until the client's conservative deadline passed
    "deadline",  # the caller's own deadline left no time for another renewal
    "cancelled",  # the caller cancelled the wait (a CancelToken); the waiter was dropped on the server
)


class EdgelockError(Exception):
    """Base class of every error this package raises.

    `code` is the server's problem code (a key of ERROR_CODES) or a client code (CLIENT_ERROR_CODES);
    `status` is the HTTP status, or None when no answer arrived; `detail` says what happened.
    """

    def __init__(self, code: str, detail: str, status: Optional[int] = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


class LockHeld(EdgelockError):
    """The lock is held (or others are queued ahead), and the wait, if any, ran out."""

    def __init__(
        self, problem: Mapping[str, Any], status: int = 409, retry_after_header: Optional[float] = None
    ) -> None:
        super().__init__(str(problem.get("code")), _detail(problem), status)
        retry_after_ms = problem.get("retryAfterMs")
        #: Seconds after which trying again may succeed (the server's estimate).
        self.retry_after: float = (
            retry_after_ms / 1000 if _is_number(retry_after_ms) else (retry_after_header or 0.0)
        )
        holders = problem.get("holders")
        #: The first current holders (owner, token, expiresAt, mode, permits, holdCount), never a leaseId.
        self.holders: list = list(holders) if isinstance(holders, list) else []
        self.holder: Optional[dict] = self.holders[0] if self.holders else None
        count = problem.get("holderCount")
        self.holder_count: int = count if isinstance(count, int) else len(self.holders)
        position = problem.get("position")
        #: This leaseId's place in the queue when it was queued, else None.
        self.position: Optional[int] = position if isinstance(position, int) else None
        lease_id = problem.get("leaseId")
        #: The queued request's own leaseId (with `position`).
        self.lease_id: Optional[str] = lease_id if isinstance(lease_id, str) else None


class LeaseLost(EdgelockError):
    """The lease is gone: renew/release said `not_held`, or the client could not renew it in time.

    `reason` is the server's (`expired`, `released`, `forced`, `cancelled`, `queued`, `unknown`) or the
    client's (`expired` for `lease_expired`, `deadline`).
    """

    def __init__(self, code: str, reason: str, detail: str, status: Optional[int] = None) -> None:
        super().__init__(code, detail, status)
        self.reason = reason


class ValidationError(EdgelockError):
    """The request was refused as invalid (400s, 413, 415, mismatched lock kinds), or an argument was."""


class AuthError(EdgelockError):
    """The API key is missing, wrong, or lacks the scope (401, 403), or the service has no keys (503)."""


class ServiceError(EdgelockError):
    """The service failed or could not be reached (5xx, network errors, answers that are not the API)."""

    def __init__(
        self, code: str, detail: str, status: Optional[int] = None, retry_after: Optional[float] = None
    ) -> None:
        super().__init__(code, detail, status)
        #: Seconds the service asked to wait before retrying, when it said.
        self.retry_after = retry_after


class Cancelled(EdgelockError):
    """The caller cancelled an acquire through its CancelToken; the server's waiter was dropped first."""

    def __init__(self, detail: str = "the wait was cancelled") -> None:
        super().__init__("cancelled", detail)


#: The one code -> class table. tests/test_errors.py fails when a code of ERROR_CODES is missing here.
KIND_BY_CODE = {
    "lock_held": LockHeld,
    "lock_delay": LockHeld,
    "waiters_ahead": LockHeld,
    "too_many_waiters": LockHeld,
    "too_many_sessions": LockHeld,
    "not_held": LeaseLost,
    "lease_ended": LeaseLost,
    "wait_cancelled": LeaseLost,
    "limit_mismatch": ValidationError,
    "upgrade_not_supported": ValidationError,
    "reentrant_mismatch": ValidationError,
    "too_many_holds": ValidationError,
    "invalid_name": ValidationError,
    "invalid_body": ValidationError,
    "malformed_json": ValidationError,
    "invalid_ttl": ValidationError,
    "invalid_wait": ValidationError,
    "invalid_owner": ValidationError,
    "invalid_lease_id": ValidationError,
    "invalid_mode": ValidationError,
    "invalid_limit": ValidationError,
    "invalid_permits": ValidationError,
    "permits_exceed_limit": ValidationError,
    "invalid_reentrant": ValidationError,
    "holder_key_required": ValidationError,
    "invalid_holder_key": ValidationError,
    "invalid_repoll": ValidationError,
    "invalid_query": ValidationError,
    "upgrade_required": ValidationError,
    "invalid_frame": ValidationError,
    "invalid_lock_delay": ValidationError,
    "unsupported_media_type": ValidationError,
    "body_too_large": ValidationError,
    "unauthorized": AuthError,
    "forbidden": AuthError,
    "forbidden_scope": AuthError,
    "auth_not_configured": AuthError,
    "not_found": ServiceError,
    "method_not_allowed": ServiceError,
    "unavailable": ServiceError,
    "internal": ServiceError,
}
assert set(KIND_BY_CODE) == set(ERROR_CODES), "KIND_BY_CODE must place every code of ERROR_CODES"


def error_from_problem(
    problem: Mapping[str, Any], status: int, retry_after_header: Optional[float] = None
) -> EdgelockError:
    """The typed error for a problem answer (a JSON object with a string `code`)."""
    code = str(problem.get("code"))
    kind = KIND_BY_CODE.get(code) or _kind_by_status(status)
    detail = _detail(problem)
    if kind is LockHeld:
        return LockHeld(problem, status, retry_after_header)
    if kind is LeaseLost:
        reason = problem.get("reason")
        if code == "wait_cancelled":
            reason = "cancelled"
        return LeaseLost(code, reason if isinstance(reason, str) else "unknown", detail, status)
    if kind is ServiceError:
        retry_after_ms = problem.get("retryAfterMs")
        retry_after = retry_after_ms / 1000 if _is_number(retry_after_ms) else retry_after_header
        return ServiceError(code, detail, status, retry_after)
    return kind(code, detail, status)


def _kind_by_status(status: int) -> type:
    if status in (401, 403):
        return AuthError
    if status in (409, 429):
        return LockHeld
    if 400 <= status < 500:
        return ValidationError
    return ServiceError


def _detail(problem: Mapping[str, Any]) -> str:
    for key in ("detail", "title", "code"):
        value = problem.get(key)
        if isinstance(value, str) and value:
            return value
    return "no detail"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
