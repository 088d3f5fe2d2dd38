"""Retry policy and cancellation: exponential backoff with full jitter for network errors and 5xx (never 4xx),
and `CancelToken`, which interrupts a wait or an in-flight request from another thread. Which calls retry,
and with which leaseId, is decided in client.py and lease.py.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional

from .errors import ServiceError


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of network errors and 5xx. Delays are seconds.

    `retries` counts retries after the first attempt (renewals ignore it and retry until the lease's
    deadline). The n-th retry waits a random time below min(max_delay, min_delay * 2**n) (full jitter), and
    at least a server's Retry-After (capped at max_delay, which stays below the 3 s re-poll grace so a
    retried wait keeps its queue place).
    """

    retries: int = 4
    min_delay: float = 0.1
    max_delay: float = 2.0


DEFAULT_RETRY = RetryPolicy()


def backoff_delay(attempt: int, policy: RetryPolicy, retry_after: Optional[float] = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    ceiling = min(policy.max_delay, policy.min_delay * 2**attempt)
    return max(random.random() * ceiling, min(retry_after or 0.0, policy.max_delay))


def is_retryable(error: BaseException) -> bool:
    """Whether another try may succeed: network errors, timeouts and 5xx; never 4xx or a refusal."""
    return isinstance(error, ServiceError) and (error.status is None or error.status >= 500)


class CancelToken:
    """Cancels an acquire from any thread: the wait stops, an in-flight request is cut off, and the client
    releases the leaseId so the server drops the waiter. The acquire then raises `Cancelled`.

    >>> token = CancelToken()
    >>> threading.Timer(5, token.cancel).start()      # give up after 5 s, from another thread
    >>> locks.acquire("jobs", wait=60, cancel=token)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: List[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def sleep(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True if cancelled meanwhile (at once, not when the time is up)."""
        return self._event.wait(max(0.0, seconds))

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Runs `callback` when cancelled (at once if already); returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback()
        return lambda: None

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

