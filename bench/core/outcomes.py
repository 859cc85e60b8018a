"""Journey outcomes and which of them are failures: one definition for every layer.

A journey is *decided* when it has any outcome but ``aborted`` or ``dropped`` (an
aborted journey was cut short by the test stopping, a dropped one never started:
neither says anything about the target).  *Failed* is
every decided outcome that is not ``ready``: a client asking for a session got none.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Outcome(enum.StrEnum):
    """Exactly one per journey; they add up to the journeys started."""

    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPLETED_BEFORE_READY = "completed_before_ready"
    TIMEOUT = "timeout"
    CREATE_REJECTED = "create_rejected"
    CREATE_ERROR = "create_error"
    POLL_ERROR = "poll_error"
    PROTOCOL_ERROR = "protocol_error"
    CONNECT_ERROR = "connect_error"  # ready, but its cdp_url could not be used (--cdp-check)
    NAVIGATE_ERROR = "navigate_error"  # connected, but the page did not load (--cdp-navigate)
    ABORTED = "aborted"
    DROPPED = "dropped"  # open model: the arrival found --max-in-flight journeys in flight


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


# Outcomes that say nothing of the target: the harness cut the journey (aborted) or
# never started it because its own cap was full (dropped, judged on its own: see
# bench.analyse.capacity).
NOT_DECIDED = ("aborted", "dropped")
FAILURE_OUTCOMES: tuple[str, ...] = tuple(
    o for o in OUTCOMES if o != "ready" and o not in NOT_DECIDED
)


def failure_counts(outcomes: Mapping[str, int]) -> tuple[int, int]:
    """(failures, decided) from one part's outcome counts; see the module docstring."""
    decided = sum(n for name, n in outcomes.items() if name not in NOT_DECIDED)
    failures = sum(outcomes.get(name, 0) for name in FAILURE_OUTCOMES)
    return failures, decided


def failure_rate(outcomes: Mapping[str, int]) -> float | None:
    """Failed / decided journeys; None when none was decided."""
    failures, decided = failure_counts(outcomes)
    return failures / decided if decided else None
