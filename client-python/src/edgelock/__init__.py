"""edgelock: the Python client of the edgelock lock service (leases, fencing tokens, fair waiting).
Re-exports only; see client.py for the entry point. Standard library only, Python >= 3.9.
"""

from .client import DEFAULT_REQUEST_TIMEOUT, DEFAULT_TTL, Client, new_lease_id
from .durations import Duration, format_ms, to_ms
from .errors import (
    CLIENT_ERROR_CODES,
    AuthError,
    Cancelled,
    EdgelockError,
    LeaseLost,
    LockHeld,
    ServiceError,
    ValidationError,
    error_from_problem,
)
from .lease import DRIFT_FACTOR, MIN_DRIFT_MS, RENEW_AT_FRACTION_LEFT, Lease, lease_deadline
from .locking import Lock, ReadWriteLock, Semaphore
from .protocol import ERROR_CODES, MAX_TTL_MS, MAX_WAIT_MS, MIN_TTL_MS
from .retry import CancelToken, RetryPolicy
from .transport import Interceptor, RawResponse

__version__ = "0.1.0"

__all__ = [
    "CLIENT_ERROR_CODES",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_TTL",
    "DRIFT_FACTOR",
    "ERROR_CODES",
    "MAX_TTL_MS",
    "MAX_WAIT_MS",
    "MIN_DRIFT_MS",
    "MIN_TTL_MS",
    "RENEW_AT_FRACTION_LEFT",
    "AuthError",
    "CancelToken",
    "Cancelled",
    "Client",
    "Duration",
    "EdgelockError",
    "Interceptor",
    "Lease",
    "LeaseLost",
    "Lock",
    "LockHeld",
    "RawResponse",
    "ReadWriteLock",
    "RetryPolicy",
    "Semaphore",
    "ServiceError",
    "ValidationError",
    "error_from_problem",
    "format_ms",
    "lease_deadline",
    "new_lease_id",
    "to_ms",
]
