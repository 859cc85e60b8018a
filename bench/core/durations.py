"""Durations as people (and Locust) write them: ``30``, ``0.25``, ``30s``, ``1h30m``, ``250ms``.

Locust's own ``--run-time`` takes ``1h30m`` / ``30s`` / plain seconds; every duration
the harness takes accepts those forms too, plus decimals and the sub-second units of
the SLO files (``ms``, ``us``).  Pure: a string in, seconds out, or a one-line error.
"""

from __future__ import annotations

import math
import re

# seconds per unit; "m" is minutes, as in Locust (milliseconds are "ms")
UNITS: dict[str, float] = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})(ms|us|h|m|s)")
_PLAIN = re.compile(rf"[+-]?(?:{_NUMBER})(?:[eE][+-]?\d+)?")


class DurationError(ValueError):
    """Not a duration; the message says what forms are accepted."""


def parse_duration(text: str | float | int) -> float:
    """Seconds from a number or a string of unit parts in falling order (``1h30m``).

    A plain number is seconds.  Parts must come largest unit first and each at most
    once (``30m1h`` and ``1m1m`` are refused as typos, not added up).
    """
    if isinstance(text, bool):
        raise DurationError(f"expected a duration, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = str(text).strip()
        value = float(raw) if _PLAIN.fullmatch(raw) else _parse_parts(raw, text)
    if not math.isfinite(value):
        raise DurationError(f"expected a finite duration, got {text!r}")
    return value


def _parse_parts(raw: str, original: object) -> float:
    compact = raw.replace(" ", "")
    order = list(UNITS)
    total, position, last = 0.0, 0, -1
    for match in _PART.finditer(compact):
        rank = order.index(match.group(2))
        if match.start() != position or rank <= last:
            break
        total += float(match.group(1)) * UNITS[match.group(2)]
        position, last = match.end(), rank
    if position != len(compact) or last < 0:
        raise DurationError(
            f"expected a number, got {original!r} (durations such as 30s, 2m, 1h30m and 250ms "
            "work too)"
        )
    return total




class Seconds(float):
    """A float that is built from any duration form: ``Seconds("1h30m") == 5400.0``.

    Locust's web UI writes a form field back as ``type(current_value)(text)``; with
    this type in parsed_options, "30s" typed in the form parses as it does on the
    command line, where a plain float would refuse it.
    """

    def __new__(cls, value: str | float | int = 0.0) -> Seconds:
        return super().__new__(cls, parse_duration(value))


__all__ = ["UNITS", "DurationError", "Seconds", "parse_duration"]
