"""Per journey, the interval that certainly holds each phase's true duration and `ready`.

The midpoint estimates of bench.core.journey say where a value most likely is; this
says where it can be at all.  A transition between two answers happened after the
server answered the earlier one and before it answered the later one, so within
[earlier.sent, later.received]; a duration, the difference of two such instants,
lies in [end.lo - start.hi, end.hi - start.lo] (never below 0).  A phase that no
poll saw still gets an interval, [0, the window it passed in], instead of no
sample, so a distribution estimated from these intervals (bench.analyse.turnbull)
keeps the journeys too fast to be caught, which the midpoint histograms drop.

Time in answers that named no known phase may hide any phase that fits there in
order, so a phase's upper bound reaches across such an `unknown` run next to it.

Pure; takes the walk bench.core.journey.phase_estimates builds (it imports this
module, not the other way round).  Seconds in, microseconds out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

_US = 1_000_000.0


class Timed(Protocol):
    """A call's send and receive instants (bench.core.journey.Call)."""

    @property
    def sent(self) -> float: ...

    @property
    def received(self) -> float: ...


# One run of equal labels in the walk: (label, its first call, its last call).
Run = tuple[str, Timed, Timed]


def journey_intervals(
    create: Timed,
    runs: Sequence[Run],
    order: Mapping[str, int],
    timed: Sequence[str],
) -> dict[str, tuple[float, float]]:
    """(lower, upper) in microseconds for each phase in `timed`, and for `ready`.

    ``runs`` is the walk from the create's answer (the first run, always `queued`) to
    the first ready answer (the last run, labelled `ready`); ``order`` ranks the known
    phases (any other label is time in no known phase).  Returns {} unless the walk
    ends in ready: the phases of a journey that never got there are not all bounded.
    ``ready`` is measured from the create call: it holds both the time from the POST
    being sent and the time from the server taking it (ready_t - created).
    """
    if len(runs) < 2 or runs[-1][0] != "ready":
        return {}

    def window(k: int) -> tuple[float, float]:
        """Where the change from run k-1 to run k happened; run 0 began with the create."""
        if k == 0:
            return create.sent, create.received
        return runs[k - 1][2].sent, runs[k][1].received

    known = [(k, order[name]) for k, (name, _, _) in enumerate(runs) if name in order]
    out: dict[str, tuple[float, float]] = {}
    for phase in timed:
        rank = order[phase]
        before = [k for k, r in known if r < rank]
        after = [k for k, r in known if r > rank]
        if not after:
            continue  # cannot happen once ready is reached; kept for safety
        # Earliest start: when the last run of an earlier phase ended (the create for
        # the first phase); latest end: when the first run of a later phase began.
        earliest_start = window(before[-1] + 1)[0] if before else create.sent
        latest_end = window(after[0])[1]
        mine = [k for k, (name, _, _) in enumerate(runs) if name == phase]
        lower = 0.0
        if mine:
            # At least its own run: from the latest it can have begun to the earliest
            # it can have ended.
            lower = max(0.0, window(mine[-1] + 1)[0] - window(mine[0])[1])
        out[phase] = (lower * _US, max(lower, latest_end - earliest_start) * _US)
    ready_lo, ready_hi = window(len(runs) - 1)
    out["ready"] = (
        max(0.0, ready_lo - create.received) * _US,
        max(0.0, ready_hi - create.sent) * _US,
    )
    return out


__all__ = ["Run", "Timed", "journey_intervals"]
