"""When to try a call again, and how long to wait first (pure: clock, sleep and rng injected).

Waits honour the target's Retry-After in every form RFC 9110 allows (delta-seconds,
decimals tolerated, or an HTTP-date) and otherwise back off exponentially with full
jitter (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015), capped.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.measure.api import Reply

# What a retry can fix: no answer, a timeout, a rate limit, a server or gateway error,
# and a redirect (never followed: the key must not travel to another origin, but the
# next try may be answered directly).
RETRYABLE = frozenset({0, 408, 425, 429, 500, 502, 503, 504, 301, 302, 303, 307, 308})


def retryable(status: int) -> bool:
    return status in RETRYABLE or 500 <= status < 600


def parse_retry_after(
    value: str | None, *, now_wall: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from a Retry-After header, or None when there is none or it is garbage.

    Delta-seconds (``120``; decimals such as ``0.5`` tolerated) or an HTTP-date
    (``Wed, 21 Oct 2026 07:28:00 GMT``, any of RFC 9110's three date forms), whose wait
    is the date minus now (never negative).  No cap here: the caller bounds the wait by
    its own deadline, so a provider asking for a long pause is not hammered.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now_wall())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2.0 ** max(attempt, 0))))


@dataclass
class RetryPolicy:
    """Retry a call while its answer is retryable, within `attempts` tries and a deadline."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random
    deadline: float  # on `clock`
    attempts: int = 5
    base_s: float = 0.25
    cap_s: float = 8.0

    def call(self, fn: Callable[[], Reply]) -> Reply:
        """The first answer that is not retryable, or the last one when tries or time run out."""
        attempt = 0
        while True:
            reply = fn()
            attempt += 1
            if not retryable(reply.status) or attempt >= self.attempts:
                return reply
            hinted = parse_retry_after(reply.retry_after) if reply.status in (429, 503) else None
            wait = hinted if hinted is not None else backoff(
                attempt, self.base_s, self.cap_s, self.rng
            )
            if self.clock() + wait >= self.deadline:
                return reply
            self.sleep(wait)


__all__ = ["RETRYABLE", "RetryPolicy", "backoff", "parse_retry_after", "retryable"]
