"""Durations as Python users write them: seconds (int or float, like `time.sleep`), a `timedelta`, or a string
with a unit ("500ms", "1.5s", "5m", "2h"). Only this module parses them; past the public API every duration
is an integer number of milliseconds (`..._ms`), as on the wire. It does not check the server's limits.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Union

from .errors import ValidationError

#: A duration: seconds as a number, a timedelta, or a string with a unit ("250ms", "30s", "5m", "1h").
Duration = Union[int, float, timedelta, str]

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
# A unit is required in strings: a bare "30" would be seconds here but milliseconds in the TypeScript client.
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")


def to_ms(value: Duration, what: str = "duration") -> int:
    """Whole milliseconds, rounded up (so 1.0001 s never becomes shorter).

    >>> to_ms(1.5), to_ms("250ms"), to_ms(timedelta(minutes=1))
    (1500, 250, 60000)
    """
    if isinstance(value, bool):
        raise _invalid(value, what)
    if isinstance(value, timedelta):
        seconds: float = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise _invalid(value, what)
        return _checked(math.ceil(float(match.group(1)) * _UNIT_MS[match.group(2)]), value, what)
    else:
        raise _invalid(value, what)
    if not math.isfinite(seconds) or seconds < 0:
        raise _invalid(value, what)
    # Through the decimal string: 0.1 * 1000 is 100.00000000000001 in binary floats, and ceil would add 1 ms.
    return _checked(math.ceil(round(seconds * 1000, 6)), value, what)


def format_ms(ms: float) -> str:
    """For messages: 1500 -> "1.5s", 90000 -> "1m30s", 250 -> "250ms"."""
    if ms < 1_000:
        return f"{round(ms)}ms"
    if ms < 60_000:
        return f"{float(f'{ms / 1000:.1f}'):g}s"
    minutes, rest = divmod(ms, 60_000)
    seconds = round(rest / 1000)
    return f"{int(minutes)}m" if seconds == 0 else f"{int(minutes)}m{seconds}s"


def _checked(ms: int, value: object, what: str) -> int:
    if ms > 2**53 - 1:
        raise _invalid(value, what)
    return ms


def _invalid(value: object, what: str) -> ValidationError:
    return ValidationError(
        "invalid_argument",
        f"{what} must be a non-negative number of seconds, a timedelta, or a string like "
        f'"500ms", "30s", "5m" (got {value!r})',
    )
