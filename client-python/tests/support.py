"""Shared by the tests: makes the package importable from its source tree, reads the server to test against
from EDGELOCK_URL (and EDGELOCK_TOKEN), and acts behind the client's back with raw HTTP (force-release,
release by id, status) so that the tests never rely on the client to check the client.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_ROOT.parent
sys.path.insert(0, str(PACKAGE_ROOT / "src"))

import edgelock  # noqa: E402  (after the path is set)

URL = os.environ.get("EDGELOCK_URL", "").rstrip("/")
TOKEN = os.environ.get("EDGELOCK_TOKEN") or None
NO_SERVER = (
    "EDGELOCK_URL is not set: start a server (`npm start -- --insecure`) and run with "
    "EDGELOCK_URL=http://127.0.0.1:8787"
)


def needs_server(cls: type) -> type:
    """Skips a TestCase class unless EDGELOCK_URL names a server."""
    return unittest.skipUnless(URL, NO_SERVER)(cls)


def make_client(**options: Any) -> edgelock.Client:
    return edgelock.Client(URL, api_key=TOKEN, **options)


_names = itertools.count(1)


def unique(label: str) -> str:
    """A lock name no other test (or earlier run against the same server) uses."""
    return f"py-{label}-{os.getpid()}-{next(_names)}-{int(time.time() * 1000):x}"


def raw(method: str, path: str, body: Optional[dict] = None) -> Tuple[int, Any]:
    """One HTTP request straight to the server: (status, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if TOKEN is not None:
        request.add_header("authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def raw_status(name: str) -> dict:
    status, body = raw("GET", f"/v1/locks/{name}")
    assert status == 200, (status, body)
    return body


def raw_force_release(name: str) -> dict:
    status, body = raw("POST", f"/v1/locks/{name}/force-release", {})
    assert status == 200, (status, body)
    return body


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Polls `predicate` (server state, say) until it is truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
