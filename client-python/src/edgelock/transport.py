"""One HTTP exchange with the edgelock API over keep-alive `http.client` connections: build the request (base
URL, bearer key, JSON), send it, and turn the answer into parsed JSON or a typed error. It never retries a
failed request and knows nothing of leases; client.py and lease.py decide about retries and leaseIds.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

from .errors import AuthError, Cancelled, EdgelockError, ServiceError, ValidationError, error_from_problem
from .retry import CancelToken

USER_AGENT = "edgelock-python/0.1.0"
#: Idle keep-alive connections kept per client; more are closed after use.
MAX_IDLE_CONNECTIONS = 8
# A reused keep-alive connection the server already closed fails at once with one of these; every request
# is idempotent by its leaseId, so it is sent again on a fresh connection (once) instead of backing off.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class RawResponse(NamedTuple):
    """An HTTP answer as the transport saw it: status, lower-cased headers, body text."""

    status: int
    headers: Dict[str, str]
    text: str


#: Wraps every HTTP exchange: `interceptor(method, path, body, send)` returns `send()`'s answer, or raises
#: (an OSError is taken as a network failure). For tracing, and for fault injection in tests.
Interceptor = Callable[[str, str, Optional[dict], Callable[[], RawResponse]], RawResponse]


class Transport:
    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        interceptor: Optional[Interceptor] = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("invalid_argument", f"url must be an http(s) URL (got {url!r})")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._headers = {
            "accept": "application/json, application/problem+json",
            "user-agent": USER_AGENT,
            **(headers or {}),
        }
        if api_key is not None:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._interceptor = interceptor
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # A client dropped without close() still closes its idle sockets (the finalizer holds the list only).
        weakref.finalize(self, _close_all, self._idle)

    def call(
        self,
        name: str,
        action: Optional[str],
        body: Optional[dict],
        timeout: float,
        cancel: Optional[CancelToken] = None,
        query: Optional[Dict[str, str]] = None,
    ) -> Any:
        """POST `body` as JSON to /v1/locks/{name}/{action}, or GET /v1/locks/{name}?{query} when `action`
        is None.

        `timeout` (seconds) bounds connecting and each read; on expiry the call fails with a retryable
        `network_error`. A cancelled `cancel` cuts the request off and raises `Cancelled`.
        """
        path = f"{self._base}/v1/locks/{quote(name, safe='')}" + ("" if action is None else f"/{action}")
        if query:
            path += "?" + urlencode(query)
        method = "GET" if body is None else "POST"

        def send() -> RawResponse:
            return self._exchange(method, path, body, timeout, cancel)

        try:
            raw = send() if self._interceptor is None else self._interceptor(method, path, body, send)
        except EdgelockError:
            raise
        except (OSError, http.client.HTTPException) as error:
            if cancel is not None and cancel.cancelled:
                raise Cancelled() from error
            raise ServiceError("network_error", f"could not reach {self.origin}: {error!r}") from error
        return parse_answer(raw)

    def close(self) -> None:
        """Closes the idle connections (connections in use close when their request ends)."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()  # in place: the finalizer holds this list
        for conn in idle:
            conn.close()

    def _exchange(
        self, method: str, path: str, body: Optional[dict], timeout: float, cancel: Optional[CancelToken]
    ) -> RawResponse:
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = dict(self._headers)
        if payload is not None:
            headers["content-type"] = "application/json"
        conn, reused = self._take()
        try:
            return self._send(conn, method, path, payload, headers, timeout, cancel)
        except _STALE:
            if not reused or (cancel is not None and cancel.cancelled):
                raise
        return self._send(self._new(), method, path, payload, headers, timeout, cancel)

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        payload: Optional[bytes],
        headers: Dict[str, str],
        timeout: float,
        cancel: Optional[CancelToken],
    ) -> RawResponse:
        unregister = None if cancel is None else cancel.on_cancel(lambda: _cut(conn))
        try:
            conn.timeout = timeout
            if conn.sock is None:
                conn.connect()
            else:
                conn.sock.settimeout(timeout)
            # Checked after connecting: a cancel from here on finds the socket and cuts it (see _cut).
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        finally:
            if unregister is not None:
                unregister()
        answer = RawResponse(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            data.decode("utf-8", errors="replace"),
        )
        if response.will_close:
            conn.close()
        else:
            self._give(conn)
        return answer

    def _take(self) -> Tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child (Celery, multiprocessing) must not talk on its parent's sockets: the two
                # processes would read each other's answers. Forget them; the parent keeps using its own.
                self._idle.clear()
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self._new(), False

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def _new(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port)


def _close_all(connections: List[http.client.HTTPConnection]) -> None:
    for conn in connections:
        conn.close()


def _cut(conn: http.client.HTTPConnection) -> None:
    """Wakes a thread blocked reading from `conn` (called from the cancelling thread)."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def parse_answer(raw: RawResponse) -> Any:
    """The parsed JSON of a 2xx answer; raises the typed error of any other."""
    try:
        data = json.loads(raw.text) if raw.text else None
    except ValueError:
        data = None
    if 200 <= raw.status < 300:
        if data is None:
            raise ServiceError(
                "bad_response", f"expected JSON from the service, got {_describe(raw.text)}", raw.status
            )
        return data
    retry_after = _retry_after(raw.headers.get("retry-after"))
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        raise error_from_problem(data, raw.status, retry_after)
    raise _status_error(raw.status, raw.text, retry_after)


def _status_error(status: int, text: str, retry_after: Optional[float]) -> EdgelockError:
    """An error answer without a problem body (a proxy, or an auth layer answering plain text)."""
    detail = f"HTTP {status}: {_describe(text)}"
    if status == 401:
        return AuthError("unauthorized", detail, status)
    if status == 403:
        return AuthError("forbidden", detail, status)
    if status >= 500:
        return ServiceError("unavailable" if status == 503 else "internal", detail, status, retry_after)
    return ServiceError("not_found" if status == 404 else "bad_response", detail, status, retry_after)


def _retry_after(header: Optional[str]) -> Optional[float]:
    try:
        seconds = float(header) if header is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _describe(text: str) -> str:
    trimmed = " ".join(text.split())
    if not trimmed:
        return "an empty body"
    return f'"{trimmed[:120]}…"' if len(trimmed) > 120 else f'"{trimmed}"'
