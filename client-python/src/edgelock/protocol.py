"""The edgelock wire contract (HTTP API v1) as Python constants: limits, lock modes and error codes.

A mirror of client/src/protocol.ts, which is the one definition; tests/test_protocol.py fails when the two
differ. It is not validation: the server checks every limit and answers with a problem `code`.
"""

from __future__ import annotations

import re

MIN_TTL_MS = 100
MAX_TTL_MS = 86_400_000
#: Longest a single acquire request is held open; longer waits re-poll with the same leaseId.
MAX_WAIT_MS = 25_000
#: How long a queued waiter keeps its place after its request's wait ran out.
REPOLL_GRACE_MS = 3_000
#: How long a waiter that sent `repoll: true` keeps its turn after its request's wait ran out.
REPOLL_RESERVE_MS = 500
#: Longest a session's acquire may wait (a session's grant is pushed).
MAX_SESSION_WAIT_MS = 86_400_000
#: Sessions (WebSockets): ping period, silence after which a session is closed, sessions per lock.
SESSION_PING_MS = 5_000
SESSION_TIMEOUT_MS = 15_000
MAX_SESSIONS = 1_000
MAX_WAITERS = 1_000
MAX_LIMIT = 10_000
MAX_LOCK_DELAY_MS = 60_000
MAX_OWNER_LENGTH = 256
MAX_HOLD_COUNT = 16
MAX_HOLDERS_IN_PROBLEM = 5
HOLDERS_PAGE_SIZE = 100
MAX_BODY_BYTES = 8_192
# What the server shows of a lock's queue, history and directory (docs/api.md); this client does not call
# those routes, it mirrors the contract's numbers.
QUEUE_VIEW_SIZE = 20
HISTORY_MAX_EVENTS = 1_000
EVENTS_PAGE_SIZE = 50
MAX_EVENTS_PAGE_SIZE = 200
DIRECTORY_PAGE_SIZE = 100
MAX_DIRECTORY_PAGE_SIZE = 500
DIRECTORY_REPORT_DELAY_MS = 250

LOCK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
#: Lease ids and holder keys: 16-128 characters of A-Z a-z 0-9 _ -.
LEASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")

LOCK_MODES = ("exclusive", "shared")
NOT_HELD_REASONS = ("expired", "released", "unknown", "queued", "cancelled", "forced", "session_closed")

#: Every `code` an error answer can carry, with its HTTP status.
ERROR_CODES = {
    "lock_held": 409,
    "lock_delay": 409,
    "waiters_ahead": 409,
    "not_held": 409,
    "lease_ended": 409,
    "limit_mismatch": 409,
    "upgrade_not_supported": 409,
    "wait_cancelled": 409,
    "reentrant_mismatch": 409,
    "too_many_holds": 409,
    "too_many_waiters": 429,
    "too_many_sessions": 429,
    "invalid_name": 400,
    "invalid_body": 400,
    "malformed_json": 400,
    "invalid_ttl": 400,
    "invalid_wait": 400,
    "invalid_owner": 400,
    "invalid_lease_id": 400,
    "invalid_mode": 400,
    "invalid_limit": 400,
    "invalid_permits": 400,
    "permits_exceed_limit": 400,
    "invalid_reentrant": 400,
    "holder_key_required": 400,
    "invalid_holder_key": 400,
    "invalid_repoll": 400,
    "invalid_query": 400,
    "invalid_lock_delay": 400,
    "upgrade_required": 426,
    "invalid_frame": 400,
    "unsupported_media_type": 415,
    "body_too_large": 413,
    "not_found": 404,
    "method_not_allowed": 405,
    "unauthorized": 401,
    "forbidden": 403,
    "forbidden_scope": 403,
    "auth_not_configured": 503,
    "unavailable": 503,
    "internal": 500,
}
