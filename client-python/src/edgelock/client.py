"""The edgelock client: acquire a lease (waiting as long as asked, re-polling past one request's cap with the
same leaseId), retry lost requests with that leaseId, drop an abandoned wait on the server, and hand out the
`with`/decorator/asyncio forms (locking.py). A `Lease` (lease.py) owns everything after the grant.
Standard library only.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import threading
import time
import weakref
from datetime import datetime
from typing import Any, Callable, Dict, Optional, Union

from .durations import Duration, to_ms
from .errors import AuthError, Cancelled, EdgelockError, LockHeld, ServiceError, ValidationError
from .lease import Lease, LeaseHost, bad_answer, is_wire_lease
from .locking import Lock, ReadWriteLock, Semaphore, run_in_thread
from .protocol import LOCK_NAME_PATTERN, MAX_WAIT_MS
from .retry import DEFAULT_RETRY, CancelToken, RetryPolicy, backoff_delay, is_retryable
from .transport import Interceptor, Transport

#: Lease length (seconds) when `ttl` is not given.
DEFAULT_TTL = 30.0
#: Time budget (seconds) of one request, on top of the time it is asked to wait.
DEFAULT_REQUEST_TIMEOUT = 10.0
#: Time budget (seconds) of the best-effort release that drops an abandoned wait.
ABANDON_TIMEOUT = 2.0
#: Shortest pause (seconds) before trying again when the server gave no queue place (a lock-delay).
MIN_PAUSE = 0.05


def new_lease_id() -> str:
    """A fresh leaseId: 32 hex characters from the OS's CSPRNG."""
    return secrets.token_hex(16)


class Client:
    """A client of one edgelock service. Thread-safe; share one per process. It never mutates its options.

    >>> locks = Client("http://localhost:8787", api_key=os.environ["EDGELOCK_TOKEN"])  # doctest: +SKIP
    >>> with locks.lock("nightly-report", ttl=30, wait=10) as lease:                  # doctest: +SKIP
    ...     write_report(fence=lease.token)

    Options: `api_key` (sent as a bearer token), `owner` (default label shown to others), `headers` (extra
    headers on every request), `retry` (RetryPolicy for network errors and 5xx), `request_timeout` (seconds
    per request on top of its wait, default 10), `max_wait` (the longest one request waits before the client
    re-polls, default and at most 25 s), `holder_key` (reentrancy identity; default a random secret per
    client and per thread or asyncio task), `interceptor` (wraps each HTTP exchange: tracing, tests).
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        owner: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        request_timeout: Duration = DEFAULT_REQUEST_TIMEOUT,
        max_wait: Duration = MAX_WAIT_MS / 1000,
        holder_key: Optional[str] = None,
        interceptor: Optional[Interceptor] = None,
    ) -> None:
        self._transport = Transport(url, api_key, headers, interceptor)
        self._host = LeaseHost(self._transport, retry, to_ms(request_timeout, "request_timeout") / 1000)
        self._max_wait_ms = to_ms(max_wait, "max_wait")
        if not 0 < self._max_wait_ms <= MAX_WAIT_MS:
            raise ValidationError(
                "invalid_argument", f"max_wait must be above 0 and at most {MAX_WAIT_MS} ms"
            )
        self._owner = owner
        self._holder_key = holder_key
        self._thread_keys = threading.local()
        self._task_keys: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self._keys_lock = threading.Lock()

    # -- acquiring ---------------------------------------------------------------------------------------

    def acquire(
        self,
        name: str,
        *,
        ttl: Duration = DEFAULT_TTL,
        wait: Duration = 0,
        owner: Optional[str] = None,
        lease_id: Optional[str] = None,
        mode: Optional[str] = None,
        limit: Optional[int] = None,
        permits: Optional[int] = None,
        reentrant: bool = False,
        holder_key: Optional[str] = None,
        lock_delay: Optional[Duration] = None,
        keep_alive: bool = False,
        deadline: Union[float, datetime, None] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Lease:
        """Acquires a lease, waiting up to `wait` seconds (0 tries once).

        Waits longer than one request's cap re-poll at once with the same leaseId and keep their queue
        place. Network errors and 5xx are retried with backoff and the same leaseId, so a lost answer
        returns the lease it granted, never a second grant. If the acquire gives up (cancelled, retries
        exhausted, wait over) the leaseId is released so the server drops the waiter. `keep_alive` starts the
        renewal watchdog (with `deadline`, your own cut-off: see `Lease.keep_alive`).

        Raises `LockHeld` (with `retry_after`, `holder`) when the lock is still taken after `wait`;
        `ValidationError`, `AuthError`, `ServiceError` for refused or failed requests; `Cancelled`.
        """
        check_name(name)
        wait_ms = to_ms(wait, "wait")
        lease_id = lease_id or new_lease_id()
        body: Dict[str, Any] = {"ttlMs": to_ms(ttl, "ttl"), "leaseId": lease_id}
        if (owner or self._owner) is not None:
            body["owner"] = owner or self._owner
        for key, value in (("mode", mode), ("limit", limit), ("permits", permits)):
            if value is not None:
                body[key] = value
        if reentrant:
            body["reentrant"] = True
            body["holderKey"] = holder_key or self.holder_key()
        if lock_delay is not None:
            body["lockDelayMs"] = to_ms(lock_delay, "lock_delay")
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        wire, sent_at = self._acquire(name, body, wait_ms, cancel)
        mismatch = _grant_mismatch(wire, mode or "exclusive", permits or 1, limit)
        if mismatch is not None:
            self._abandon(name, lease_id)
            raise ServiceError("bad_response", mismatch, 200)
        lease = Lease(wire, sent_at, self._host, release_id=lease_id)
        if keep_alive:
            lease.keep_alive(deadline)
        return lease

    async def aacquire(self, name: str, **options: Any) -> Lease:
        """`acquire` for asyncio: the wait runs on its own thread, so the event loop never blocks.
        Cancelling the awaiting task cancels the wait (the server drops the waiter) and releases a grant
        that raced the cancellation."""
        if options.get("reentrant") and options.get("holder_key") is None:
            options["holder_key"] = self.holder_key()  # this task's key, taken on the loop's thread
        token = CancelToken()
        outer: Optional[CancelToken] = options.pop("cancel", None)
        unlink = outer.on_cancel(token.cancel) if outer is not None else None
        future = run_in_thread(functools.partial(self.acquire, name, cancel=token, **options))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            token.cancel()
            # Wait for the thread: it drops the waiter on the server before the task reports cancellation.
            try:
                lease: Optional[Lease] = await future
            except BaseException:
                lease = None
            if lease is not None:
                await run_in_thread(functools.partial(_release_quietly, lease))
            raise
        finally:
            if unlink is not None:
                unlink()

    def _acquire(
        self, name: str, base: Dict[str, Any], wait_ms: int, cancel: Optional[CancelToken]
    ) -> "tuple[dict, float]":
        lease_id = base["leaseId"]
        wait_until = time.monotonic() + wait_ms / 1000
        retry = self._host.retry
        failures = 0
        may_be_known = False  # a request reached (or may have reached) the server with this leaseId
        try:
            while True:
                sent_at = time.monotonic()
                left_ms = max(0, int((wait_until - sent_at) * 1000))
                request_wait_ms = min(self._max_wait_ms, left_ms)
                body = dict(base, waitMs=request_wait_ms)
                if left_ms > request_wait_ms:
                    body["repoll"] = True  # not the last request: keep the turn until the next one arrives
                try:
                    answer = self._transport.call(
                        name, "acquire", body, request_wait_ms / 1000 + self._host.request_timeout, cancel
                    )
                    if not is_wire_lease(answer):
                        raise bad_answer("acquire")
                    return answer, sent_at
                except EdgelockError as error:
                    # Queued, cut off mid-request, or granted with the answer lost: the server may know it.
                    may_be_known = may_be_known or request_wait_ms > 0 or is_retryable(error)
                    if isinstance(error, Cancelled):
                        raise
                    left = wait_until - time.monotonic()
                    if isinstance(error, LockHeld) and error.code != "too_many_waiters" and left > 0:
                        failures = 0
                        # Queued: re-poll at once, inside the reserve. Not queued (a lock-delay): wait it out.
                        pause = 0.0 if error.position is not None else max(error.retry_after, MIN_PAUSE)
                        if pause > 0 and _sleep(min(left, pause), cancel):
                            raise Cancelled() from None
                        continue
                    if not is_retryable(error) or failures >= retry.retries:
                        raise
                    if _sleep(backoff_delay(failures, retry, getattr(error, "retry_after", None)), cancel):
                        raise Cancelled() from None
                    failures += 1
        except EdgelockError as error:
            refused = isinstance(error, (ValidationError, AuthError))
            if (may_be_known or isinstance(error, Cancelled)) and not refused:
                self._abandon(name, lease_id)
            raise

    def _abandon(self, name: str, lease_id: str) -> None:
        """Drops whatever the server may hold for an acquire we gave up on: a queued waiter (the platform does
        not report disconnects) or a grant whose answer never arrived. Best effort: failures are ignored."""
        try:
            self._transport.call(name, "release", {"leaseId": lease_id}, ABANDON_TIMEOUT)
        except EdgelockError:
            pass

    def holder_key(self) -> str:
        """The reentrancy identity sent with `reentrant=True`: the client's `holder_key` if given, else a
        random secret for this client and the calling thread (or asyncio task), so only the same thread
        re-enters."""
        if self._holder_key is not None:
            return self._holder_key
        task = _current_task()
        if task is not None:
            with self._keys_lock:
                return self._task_keys.setdefault(task, secrets.token_urlsafe(24))
        # Keyed by process too: a forked child's main thread is another holder than its parent's.
        pid_and_key = getattr(self._thread_keys, "pid_and_key", None)
        if pid_and_key is None or pid_and_key[0] != os.getpid():
            pid_and_key = self._thread_keys.pid_and_key = (os.getpid(), secrets.token_urlsafe(24))
        return pid_and_key[1]

    # -- the `with`, decorator and asyncio forms ---------------------------------------------------------

    def lock(self, name: str, **options: Any) -> Lock:
        """A lock to use as `with`, `async with`, or a decorator. Entering acquires (with `acquire`'s options)
        and starts the renewal watchdog; leaving releases, and raises `LeaseLost` if the lease was lost.

        >>> with locks.lock("nightly-report", ttl=30, wait=10) as lease:  # doctest: +SKIP
        ...     write_report(fence=lease.token)
        """
        check_name(name)
        return Lock(self, name, options)

    def alock(self, name: str, **options: Any) -> Lock:
        """The same lock as `lock`, named for `async with locks.alock(...) as lease:` in asyncio code."""
        return self.lock(name, **options)

    def synchronized(self, name: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: each call runs holding the lock (coroutine functions with `async with`).

        >>> @locks.synchronized("ledger", ttl=10, wait=60)  # doctest: +SKIP
        ... def settle(): ...
        """
        return self.lock(name, **options)

    def semaphore(self, name: str, limit: int) -> Semaphore:
        """A counting semaphore of `limit` permits; every user of the name must state the same limit."""
        check_name(name)
        return Semaphore(self, name, limit)

    def rwlock(self, name: str) -> ReadWriteLock:
        """A read-write lock: `read()` (shared) and `write()` (exclusive) locks on one name."""
        check_name(name)
        return ReadWriteLock(self, name)

    # -- by name or id -----------------------------------------------------------------------------------

    def status(self, name: str, after: Optional[int] = None) -> dict:
        """The lock's public state: held, kind, holders (never their leaseIds), waiters, lastToken, limit...

        `holders` is one page (at most 100, in token order) of `holderCount`; pass the answer's `nextAfter`
        as `after` for the next page.
        """
        check_name(name)
        answer = self._call_with_retry(name, None, None, None if after is None else {"after": str(after)})
        if not (isinstance(answer, dict) and isinstance(answer.get("held"), bool)):
            raise bad_answer("status")
        return answer

    def renew_by_id(self, name: str, lease_id: str, ttl: Optional[Duration] = None) -> dict:
        """Renews a lease known only by its leaseId (a script's, or another process's)."""
        check_name(name)
        body: Dict[str, Any] = {"leaseId": lease_id}
        if ttl is not None:
            body["ttlMs"] = to_ms(ttl, "ttl")
        answer = self._call_with_retry(name, "renew", body)
        if not is_wire_lease(answer):
            raise bad_answer("renew")
        return answer

    def release_by_id(self, name: str, lease_id: str) -> dict:
        """Releases a lease (or cancels a queued wait) known only by its leaseId. Safe to retry."""
        check_name(name)
        answer = self._call_with_retry(name, "release", {"leaseId": lease_id})
        if not (isinstance(answer, dict) and isinstance(answer.get("released"), bool)):
            raise bad_answer("release")
        return answer

    def close(self) -> None:
        """Closes idle keep-alive connections. Leases stay valid; later calls reconnect."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call_with_retry(
        self, name: str, action: Optional[str], body: Optional[dict], query: Optional[Dict[str, str]] = None
    ) -> Any:
        retry = self._host.retry
        attempt = 0
        while True:
            try:
                return self._transport.call(name, action, body, self._host.request_timeout, query=query)
            except EdgelockError as error:
                if not is_retryable(error) or attempt >= retry.retries:
                    raise
                time.sleep(backoff_delay(attempt, retry, getattr(error, "retry_after", None)))
                attempt += 1


def check_name(name: str) -> None:
    if not isinstance(name, str) or LOCK_NAME_PATTERN.fullmatch(name) is None:
        raise ValidationError(
            "invalid_name", f"a lock name is 1-200 characters of A-Z a-z 0-9 . _ - : (got {name!r})"
        )


def _grant_mismatch(wire: dict, mode: str, permits: int, limit: Optional[int]) -> Optional[str]:
    """Why a grant does not fit its request, or None. A reentrant answer, say, must never hand a writer the
    shared lease its thread holds as a reader."""
    if wire["mode"] != mode or wire["permits"] != permits:
        return (
            f"asked for a {mode} lease of {permits} permit(s) and was granted a {wire['mode']} lease of "
            f"{wire['permits']}"
        )
    if limit is not None and wire["limit"] != limit:
        return f"asked for a semaphore of limit {limit} and was granted a lease of limit {wire['limit']}"
    return None


def _sleep(seconds: float, cancel: Optional[CancelToken]) -> bool:
    """Sleeps; True if `cancel` fired meanwhile."""
    if cancel is None:
        time.sleep(max(0.0, seconds))
        return False
    return cancel.sleep(seconds)


def _current_task() -> Any:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop running in this thread
        return None


def _release_quietly(lease: Lease) -> None:
    try:
        lease.release()
    except EdgelockError:
        pass
