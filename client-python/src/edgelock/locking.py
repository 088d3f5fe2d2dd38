"""The `with` / `async with` / decorator forms of a lock, and the semaphore and read-write views. They only
fill in acquire options and scope a lease to a block; the server enforces the rules, and client.py acquires.
`run_in_thread` is how asyncio code waits for a blocking call without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List

from .lease import Lease, finish

if TYPE_CHECKING:
    from .client import Client


class Lock:
    """One named lock with fixed acquire options, used as a context manager (sync or async) or a decorator.

    Entering acquires and starts the renewal watchdog; leaving releases, and raises `LeaseLost` if the lease
    was lost meanwhile. The object is reusable, also from several threads or tasks at once (each entry gets
    its own lease).

    >>> with locks.lock("nightly-report", ttl=30, wait=10) as lease:       # doctest: +SKIP
    ...     write_report(fence=lease.token)
    >>> async with locks.alock("cache-rebuild", ttl=30, wait=5) as lease:  # doctest: +SKIP
    ...     await rebuild()
    """

    def __init__(self, client: Client, name: str, options: Dict[str, Any]) -> None:
        self._client = client
        self.name = name
        self._options = dict(options)
        self._entered: Dict[Any, List[Lease]] = {}
        self._mutex = threading.Lock()

    def acquire(self, **overrides: Any) -> Lease:
        """A lease you release yourself (options as `Client.acquire`, overriding this lock's)."""
        return self._client.acquire(self.name, **{**self._options, **overrides})

    async def aacquire(self, **overrides: Any) -> Lease:
        return await self._client.aacquire(self.name, **{**self._options, **overrides})

    def __enter__(self) -> Lease:
        lease = self._client.acquire(self.name, **{**self._options, "keep_alive": True})
        self._push(lease)
        return lease

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        finish(self._pop(), exc)

    async def __aenter__(self) -> Lease:
        lease = await self._client.aacquire(self.name, **{**self._options, "keep_alive": True})
        self._push(lease)
        return lease

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await run_in_thread(functools.partial(finish, self._pop(), exc))

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: every call of `fn` runs holding the lock (a coroutine function with `async with`)."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_locked(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)

            return async_locked

        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return locked

    def __repr__(self) -> str:
        return f"<edgelock.Lock {self.name!r} {self._options}>"

    # Leases entered through this object, per thread or asyncio task, so that concurrent and nested entries
    # each leave with their own lease.
    def _push(self, lease: Lease) -> None:
        with self._mutex:
            self._entered.setdefault(_scope(), []).append(lease)

    def _pop(self) -> Lease:
        scope = _scope()
        with self._mutex:
            stack = self._entered[scope]
            lease = stack.pop()
            if not stack:
                del self._entered[scope]
        return lease


class Semaphore:
    """A counting semaphore: at most `limit` permits held at once across all clients.

    >>> pool = locks.semaphore("gpu-pool", 4)
    >>> with pool.lock(permits=2, ttl=60, wait=600) as lease:  # doctest: +SKIP
    ...     train()
    """

    def __init__(self, client: Client, name: str, limit: int) -> None:
        self._client = client
        self.name = name
        self.limit = limit

    def lock(self, permits: int = 1, **options: Any) -> Lock:
        return Lock(self._client, self.name, {**options, "limit": self.limit, "permits": permits})

    def acquire(self, permits: int = 1, **options: Any) -> Lease:
        return self.lock(permits, **options).acquire()

    async def aacquire(self, permits: int = 1, **options: Any) -> Lease:
        return await self.lock(permits, **options).aacquire()


class ReadWriteLock:
    """Many readers (`shared`) or one writer (`exclusive`). Waiters are served in order, so a queued writer is
    not starved by a stream of readers. A read lease cannot be upgraded.

    >>> config = locks.rwlock("config")
    >>> with config.read(ttl=10, wait=5):  # doctest: +SKIP
    ...     load_config()
    """

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    def read(self, **options: Any) -> Lock:
        return Lock(self._client, self.name, {**options, "mode": "shared"})

    def write(self, **options: Any) -> Lock:
        return Lock(self._client, self.name, {**options, "mode": "exclusive"})


def run_in_thread(fn: Callable[[], Any]) -> "asyncio.Future[Any]":
    """Runs a blocking call on a new daemon thread and returns a future of the running loop. A thread per
    call, not the loop's default executor: an acquire may wait for minutes, and a few of them would use up
    that executor's few workers for every other user of it."""
    loop = asyncio.get_running_loop()
    future: "asyncio.Future[Any]" = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.cancelled():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def target() -> None:
        try:
            outcome = (True, fn())
        except BaseException as error:  # handed to the awaiting task, which re-raises it
            outcome = (False, error)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop is closed; nobody awaits the result (a lease then ends at its TTL)

    threading.Thread(target=target, name="edgelock-async", daemon=True).start()
    return future


def _scope() -> Any:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else ("thread", threading.get_ident())
