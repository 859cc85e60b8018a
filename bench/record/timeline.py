"""The run's timeline (concurrency and journey counts per interval) and its progress line; pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.core.outcomes import failure_counts


@dataclass(frozen=True)
class Totals:
    """Cumulative journey counts at one instant (all steps, warm-up included)."""

    started: int
    ready: int
    failed: int
    dropped: int = 0  # open model: arrivals that found --max-in-flight journeys in flight

    @classmethod
    def of(cls, journeys: int, outcomes: Mapping[str, int]) -> Totals:
        # The report's definition: every outcome but ready is a failure, except aborted
        # and dropped (the harness stopped or never started the journey, not the target).
        failed, _ = failure_counts(outcomes)
        return cls(
            journeys, int(outcomes.get("ready", 0)), failed, int(outcomes.get("dropped", 0))
        )


@dataclass
class Timeline:
    """Samples taken every `interval_s`; counts are per interval, not cumulative.

    A journey is counted when the harness learns of it: `started` when it starts,
    `ready` / `failed` when it ends (a ready journey ends after its release call).
    In a distributed run the master learns of workers' journeys with each shipped
    delta, so counts there lag by up to one shipping interval.
    """

    interval_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    _last: Totals = field(default_factory=lambda: Totals(0, 0, 0, 0))

    def sample(
        self,
        t_s: float,
        *,
        step: int | None,
        target: int,
        users: int,
        in_flight: int,
        totals: Totals,
    ) -> dict[str, Any]:
        last = self._last
        self._last = totals
        row = {
            "t_s": round(t_s, 3),
            "step": step,
            "target": target,
            "users": users,
            "in_flight": in_flight,
            # max(): a recorder reset (web UI restart) must not yield negative counts.
            "started": max(0, totals.started - last.started),
            "ready": max(0, totals.ready - last.ready),
            "failed": max(0, totals.failed - last.failed),
            "dropped": max(0, totals.dropped - last.dropped),
        }
        self.samples.append(row)
        return row

    def to_document(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "samples": list(self.samples)}


def progress_line(
    *,
    step: int | None,
    steps: int,
    target: int,
    elapsed_s: float,
    ladder_s: float,
    in_flight: int,
    totals: Totals,
    draining: bool,
    load: str | None = None,
) -> str:
    """One line for a long headless run: where the ladder is and how journeys are going.

    `load` names the step's load when it is not `target` concurrent journeys (the open
    model's "2 sessions/s").
    """
    if draining or step is None:
        where = "draining in-flight journeys"
    else:
        left = max(0.0, ladder_s - elapsed_s)
        offered = load or f"{target} concurrent"
        where = f"step {step + 1}/{steps} ({offered}), {_clock(left)} left"
    return (
        f"progress: {where}; in flight {in_flight}, "
        f"started {totals.started}, ready {totals.ready}, failed {totals.failed}"
    )


def _clock(seconds: float) -> str:
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
