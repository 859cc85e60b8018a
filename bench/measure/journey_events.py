"""What a finished journey tells Locust (its stats and web UI) and the journey log."""

from __future__ import annotations

from typing import Any

import orjson

from bench.core.journey import TIMED_PHASES, UNKNOWN, JourneyResult
from bench.core.outcomes import Outcome


def fire_journey_events(environment: Any, result: JourneyResult) -> None:
    """Show phases and outcomes in Locust's own stats (web UI, --csv) under stable names."""
    fire = environment.events.request.fire
    for metric in (*TIMED_PHASES, UNKNOWN, "ready", "ready_seen"):
        values = result.samples.get(metric)
        if values:
            fire(
                request_type="PHASE",
                name=metric,
                response_time=values[0] / 1000.0,
                response_length=0,
                exception=None,
                context={},
            )
    ok = result.outcome is Outcome.READY
    fire(
        request_type="JOURNEY",
        name=result.outcome.value,
        response_time=(result.samples.get("ready_seen") or [0.0])[0] / 1000.0,
        response_length=0,
        exception=None if ok else JourneyFailed(result.outcome.value),
        context={},
    )


class JourneyFailed(Exception):
    """A journey that did not reach ready (shown in Locust's failures table)."""


def journey_line(
    step: int, warmup: bool, result: JourneyResult, journey: Any, node: str
) -> bytes:
    """One journey-log line; `journey` is None for an arrival that was dropped unstarted."""
    return orjson.dumps(
        {
            "request_id": journey.request_id if journey else None,
            "session_id": journey.session_id if journey else None,
            "step": step,
            "warmup": warmup,
            "outcome": result.outcome.value,
            "http_status": result.http_status,
            "unobserved": result.unobserved,
            "estimates": {k: [v.value, v.uncertainty] for k, v in result.estimates.items()},
            "samples_us": {k: v for k, v in result.samples.items() if k != "poll"},
            # (lower, upper) us that certainly hold the truth (bench.core.censoring)
            "intervals_us": {k: list(v) for k, v in result.intervals.items()},
            "polls": len(result.samples.get("poll", ())),
            "node": node,  # the worker's client id ("local" in one process)
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


__all__ = ["JourneyFailed", "fire_journey_events", "journey_line"]
