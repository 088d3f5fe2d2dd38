"""A held lease: its fencing token, the client's own conservative deadline, renew/release, and a watchdog
daemon thread that renews it at a third of its TTL and marks it lost (`lease.lost`, a threading.Event) when
the server says `not_held`, when renewals fail until the deadline, or when the caller's deadline comes.
Acquiring, waiting and retrying acquires live in client.py.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime
from typing import Any, NamedTuple, Optional, Union

from .durations import Duration, to_ms
from .errors import EdgelockError, LeaseLost, ServiceError
from .retry import RetryPolicy, backoff_delay, is_retryable
from .transport import Transport

#: Fraction of the lease taken off the client's deadline for clock-rate drift between here and the server.
DRIFT_FACTOR = 0.01
#: Fixed part of the drift margin, for short leases.
MIN_DRIFT_MS = 10
#: The watchdog renews once this fraction of the TTL is left (Redisson renews at a third).
RENEW_AT_FRACTION_LEFT = 1 / 3
#: Least time (seconds) before a caller's deadline at which the lease is given up, to stop and release.
MIN_DEADLINE_MARGIN = 0.25


class LeaseHost(NamedTuple):
    """What a lease needs from the client that made it."""

    transport: Transport
    retry: RetryPolicy
    request_timeout: float


def lease_deadline(sent_at: float, valid_for_ms: int) -> float:
    """The client's deadline (time.monotonic() seconds) for a grant or renewal whose request was sent at
    `sent_at`: the lock object measured `valid_for_ms` from the request's arrival, which came later, so the
    lease cannot end before this by any clock; less a drift margin (1 % + 10 ms). Not sent_at + ttl: a waited
    grant starts after sent_at, and a retry may collect a lease granted before it.
    """
    margin_ms = math.ceil(valid_for_ms * DRIFT_FACTOR) + MIN_DRIFT_MS
    return sent_at + (valid_for_ms - margin_ms) / 1000


def is_wire_lease(value: Any) -> bool:
    """Whether an answer has the lease fields the client relies on (a proxy page or a version mismatch
    becomes a clear `bad_response` instead of a KeyError)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and isinstance(value.get("leaseId"), str)
        and _is_int(value.get("token"))
        and all(_is_number(value.get(k)) for k in ("ttlMs", "expiresAt", "validForMs"))
        and all(_is_int(value.get(k)) for k in ("holdCount", "permits", "limit"))
        and value.get("mode") in ("exclusive", "shared")
        and (value.get("owner") is None or isinstance(value.get("owner"), str))
    )


def bad_answer(action: str) -> ServiceError:
    # Status 200: an answer arrived and is not the API's, so retrying would not help.
    return ServiceError("bad_response", f"the service's {action} answer is not edgelock's", 200)


class Lease:
    """A lease on a lock. Get one from `Client.acquire()` or a `with locks.lock(...)` block.

    Used as a context manager, it is released on exit, and leaving the block raises its `LeaseLost` if it was
    lost meanwhile (even when the body succeeded: its work may have overlapped another holder's).
    """

    def __init__(self, wire: dict, sent_at: float, host: LeaseHost, release_id: Optional[str] = None) -> None:
        self.name: str = wire["name"]
        #: The holder's secret (never shown to other clients); renewals use it.
        self.lease_id: str = wire["leaseId"]
        #: Fencing token: strictly greater than every token granted before on this lock. Guard writes with it.
        self.token: int = wire["token"]
        self.owner: Optional[str] = wire["owner"]
        self.mode: str = wire["mode"]
        self.permits: int = wire["permits"]
        #: The lock's semaphore limit (1 for a mutex).
        self.limit: int = wire["limit"]
        #: Set when the lease is lost; `lost_error` then says why. Pass it to the guarded work.
        self.lost = threading.Event()
        self.lost_error: Optional[LeaseLost] = None
        self._host = host
        # A reentrant hold is released by the leaseId its acquire was sent with (an alias of the lease).
        self._release_id = release_id or self.lease_id
        self._cond = threading.Condition()
        self._status = "held"  # "held" | "lost" | "released"
        self._stopping = False  # a release began: no more renewals or expiry checks
        self._keep_alive = False
        self._renew_failed = False
        self._caller_deadline: Optional[float] = None
        self._last_renew_error: Optional[BaseException] = None
        self._release_lock = threading.Lock()
        self._release_outcome: Optional[tuple] = None
        self._accept(wire, sent_at)
        self._watchdog = threading.Thread(target=self._watch, name=f"edgelock-lease-{self.name}", daemon=True)
        self._watchdog.start()

    @property
    def ttl(self) -> float:
        """Lease length in seconds granted by the last acquire or renew."""
        return self._ttl_ms / 1000

    @property
    def expires_at(self) -> float:
        """The server's expiry, epoch seconds by the *server's* clock: shown, never relied on."""
        return self._expires_at_ms / 1000

    @property
    def hold_count(self) -> int:
        """Reentrant holds on this lease (1 unless acquired with reentrant=True more than once)."""
        return self._hold_count

    @property
    def deadline(self) -> float:
        """The client's deadline, in time.monotonic() seconds: the server's lease cannot end before it."""
        return self._deadline

    @property
    def remaining(self) -> float:
        """Seconds left before `deadline` while held, else 0."""
        return max(0.0, self._deadline - time.monotonic()) if self.held else 0.0

    @property
    def held(self) -> bool:
        """True until released or lost, and only before the client's deadline."""
        return self._status == "held" and time.monotonic() < self._deadline

    def raise_if_lost(self) -> None:
        """Raises the `LeaseLost` if the lease was lost; call it between steps of long work."""
        if self.lost_error is not None:
            raise self.lost_error

    def keep_alive(self, deadline: Union[float, datetime, None] = None) -> Lease:
        """Starts the watchdog's renewals: renew each time a third of the TTL is left, until released or lost.

        `deadline` is your own hard cut-off (epoch seconds, as time.time(), or a datetime), e.g. when a
        serverless invocation ends: the lease is given up (`reason == "deadline"`) once less than a renewal
        round trip (at least 0.25 s) is left before it.
        """
        with self._cond:
            if deadline is not None:
                epoch = deadline.timestamp() if isinstance(deadline, datetime) else float(deadline)
                self._caller_deadline = time.monotonic() + (epoch - time.time())
            self._keep_alive = True
            self._cond.notify_all()
        return self

    def renew(self, ttl: Optional[Duration] = None) -> Lease:
        """Extends the lease by its TTL (or `ttl`) from now. Network errors and 5xx are retried until the
        deadline. A `not_held` answer marks the lease lost and raises `LeaseLost`."""
        if self._status == "released":
            raise LeaseLost("not_held", "released", "this lease was released; acquire again")
        self.raise_if_lost()
        body: dict = {"leaseId": self.lease_id}
        if ttl is not None:
            body["ttlMs"] = to_ms(ttl, "ttl")
        attempt = 0
        while True:
            sent_at = time.monotonic()
            left = self._deadline - sent_at
            if left <= 0:
                break
            try:
                answer = self._host.transport.call(
                    self.name, "renew", body, min(self._host.request_timeout, left)
                )
                if not is_wire_lease(answer):
                    raise bad_answer("renew")
                with self._cond:
                    if self._status == "held":
                        self._accept(answer, sent_at)
                        self._cond.notify_all()
                return self
            except LeaseLost as error:
                self._lose(error)
                raise
            except EdgelockError as error:
                if not is_retryable(error):
                    raise
                self._last_renew_error = error
                delay = backoff_delay(attempt, self._host.retry, getattr(error, "retry_after", None))
                attempt += 1
                if time.monotonic() + delay >= self._deadline:
                    break
                with self._cond:
                    self._cond.wait(delay)
                    if self._stopping:
                        raise LeaseLost("not_held", "released", "the lease was released during the renewal")
        self._expire()
        raise self.lost_error or LeaseLost("lease_expired", "expired", "the lease expired")

    def release(self) -> dict:
        """Gives the lease back; returns the server's answer (`released`, `holdCount`). Safe to call twice
        (the second call returns or raises what the first did). Raises `LeaseLost` if the server no longer
        holds it.
        """
        with self._release_lock:
            if self._release_outcome is None:
                self._release_outcome = self._release()
        ok, value = self._release_outcome
        if not ok:
            raise value
        return value

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        finish(self, exc)

    def __repr__(self) -> str:
        state = "lost" if self.lost_error else self._status
        return f"<Lease {self.name!r} token={self.token} mode={self.mode} {state}>"

    def _release(self) -> tuple:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self.lost_error is not None and self.lost_error.code == "not_held":
            return (False, self.lost_error)
        retry = self._host.retry
        attempt = 0
        while True:
            try:
                answer = self._host.transport.call(
                    self.name, "release", {"leaseId": self._release_id}, self._host.request_timeout
                )
                if not (isinstance(answer, dict) and isinstance(answer.get("released"), bool)):
                    raise bad_answer("release")
                with self._cond:
                    if self._status == "held":
                        self._status = "released"
                return (True, answer)
            except LeaseLost as error:
                self._lose(error)
                return (False, error)
            except EdgelockError as error:
                if not is_retryable(error) or attempt >= retry.retries:
                    return (False, error)
                time.sleep(backoff_delay(attempt, retry, getattr(error, "retry_after", None)))
                attempt += 1

    def _accept(self, wire: dict, sent_at: float) -> None:
        self._ttl_ms = wire["ttlMs"]
        self._expires_at_ms = wire["expiresAt"]
        self._hold_count = wire["holdCount"]
        self._deadline = lease_deadline(sent_at, wire["validForMs"])
        self._rtt = max(0.0, time.monotonic() - sent_at)

    def _watch(self) -> None:
        """The watchdog: sleeps until the next renewal, the caller's cut-off or the deadline, whichever is
        first; a release or a renewal that moved the deadline wakes it early."""
        while True:
            with self._cond:
                while True:
                    if self._status != "held" or self._stopping:
                        return
                    now = time.monotonic()
                    if now >= self._deadline:
                        self._expire_locked()
                        return
                    wake = self._deadline
                    if self._caller_deadline is not None:
                        cutoff = self._caller_deadline - max(MIN_DEADLINE_MARGIN, 2 * self._rtt)
                        if now >= cutoff:
                            self._lose_locked(
                                LeaseLost(
                                    "deadline",
                                    "deadline",
                                    "the caller's deadline leaves no time for another renewal; "
                                    "stop and release",
                                )
                            )
                            return
                        wake = min(wake, cutoff)
                    if self._keep_alive and not self._renew_failed:
                        renew_at = self._deadline - self._ttl_ms / 1000 * RENEW_AT_FRACTION_LEFT
                        if now >= renew_at:
                            break
                        wake = min(wake, renew_at)
                    self._cond.wait(wake - now)
            try:
                self.renew()
            except LeaseLost:
                return
            except EdgelockError as error:
                # A refusal (a revoked key, say) cannot be fixed by retrying: stop renewing, and the lease
                # ends at its deadline like an unrenewed one.
                with self._cond:
                    self._last_renew_error = error
                    self._renew_failed = True

    def _expire(self) -> None:
        with self._cond:
            self._expire_locked()

    def _expire_locked(self) -> None:
        cause = self._last_renew_error
        detail = (
            "the lease reached its deadline without being renewed"
            if cause is None
            else f"renewals failed until the lease's deadline passed (last: {cause})"
        )
        self._lose_locked(LeaseLost("lease_expired", "expired", detail))

    def _lose(self, error: LeaseLost) -> None:
        with self._cond:
            self._lose_locked(error)

    def _lose_locked(self, error: LeaseLost) -> None:
        if self._status != "held":
            return
        self._status = "lost"
        self.lost_error = error
        self.lost.set()
        self._cond.notify_all()


def finish(lease: Lease, exc: Optional[BaseException]) -> None:
    """Leaves a `with` block: releases, then raises the lease's `LeaseLost` if it was lost and the body
    itself raised nothing (the body's own exception wins: it may be the reaction to the loss). A failed
    release is not reported: the lease then ends at its TTL."""
    try:
        lease.release()
    except EdgelockError:
        pass
    if exc is None and lease.lost_error is not None:
        raise lease.lost_error


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
