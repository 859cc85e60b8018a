"""When a journey polls: the fixed interval, or an adaptive plan with the same poll budget.

A poll brackets a transition between itself and the poll before, so accuracy is
made where polls land.  At a fixed interval T, both ends of a phase are bracketed
on the *same* grid of polls: the difference of the two midpoints is a whole number
of intervals (a 0.46 s configuring phase reads 0.25 or 0.5 s at T = 0.25 s), and no
estimator can undo that, since the only thing such data say about a phase shorter
than about 2T is how many grid lines it crossed (its distribution is not
identifiable below the grid's step).

`Adaptive` learns from recent journeys how long each phase lasts at least (the
`dead_fraction` quantile of the lower bounds of its intervals, bench.core.censoring)
and, in every journey, polls each phase sparsely (every `max_gap_fraction` x T)
until then, and from then on every `gap` seconds on a grid whose phase is drawn
afresh, uniformly, when the phase begins.  Redrawing the grid at each phase makes
the two ends of a phase fall on independent grids (their errors no longer cancel
into whole intervals); the time saved while a phase cannot end is spent after it,
with `gap` the smallest for which recent journeys send, on average, no more polls
than the fixed interval would have (a rate model, corrected by the polls the
adaptive journeys really sent).  When there is nothing to save (phases too short to
skip any poll), or before `warmup` journeys are learned, it is the fixed schedule.

Choosing when to poll from what this journey has already seen and from other
journeys is "coarsening at random" (Heitjan & Rubin 1991, Ann. Stat. 19:2244-2253;
Gill, van der Laan & Robins 1997): the intervals stay valid data for the
interval-censored estimates of bench.analyse.intervals.  A gap never exceeds
max_gap_fraction x T, so no journey's stated uncertainty does either.

Pure: plans are driven by the times they are given; the rng is injected.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.core.journey import TIMED_PHASES, Call, JourneyResult, Observation, label
from bench.core.outcomes import Outcome

_US = 1_000_000.0


class PollPlan(Protocol):
    """Where one journey's polls go (absolute instants on the journey's clock)."""

    def first(self, create: Call) -> float: ...

    def next(self, create: Call, observations: Sequence[Observation]) -> float: ...


@dataclass
class FixedPlan:
    """Today's schedule: first poll jittered over one interval, then one interval apart."""

    interval: float
    rng: random.Random

    def first(self, create: Call) -> float:
        return create.received + self.rng.uniform(0.0, self.interval)

    def next(self, create: Call, observations: Sequence[Observation]) -> float:
        return observations[-1].call.sent + self.interval


@dataclass(frozen=True)
class Seen:
    """What one finished journey says about the phases (seconds).

    From the intervals that hold its durations (bench.core.censoring): available even
    for a phase no poll saw, and narrow once polls close in on the transitions.
    """

    lows: tuple[float, ...]  # per timed phase: it lasted at least this long
    middles: tuple[float, ...]  # per timed phase: the middle of its interval
    ready: float  # the middle of `ready`'s interval
    polls: int  # status calls it sent
    gap: float | None  # the dense gap of its plan (None: the fixed schedule)


@dataclass
class Adaptive:
    """Learns the phases' durations from finished journeys; hands each journey a plan.

    Each phase is polled sparsely (every `max_gap_fraction` intervals) until it has
    lasted as long as it does in all but `dead_fraction` of recent journeys, then
    every `gap` seconds until it ends.  `gap` is the smallest that, on the recent
    journeys' durations, sends no more polls per journey on average than the fixed
    interval would (`budget`): the time no phase can end in is polled sparsely, and
    the polls saved are spent where the phases do end.
    """

    interval: float
    window: int = 200  # journeys remembered (recent load, not the whole run)
    warmup: int = 20  # journeys before the learned durations are trusted
    dead_fraction: float = 0.01  # below this quantile of a phase's length, poll sparsely
    min_gap_fraction: float = 0.1  # of the interval: the densest polling allowed
    max_gap_fraction: float = 2.0  # of the interval: the sparsest polling allowed
    refresh: int = 20  # journeys learned between two recomputations of the gap
    seen: deque[Seen] = field(default_factory=deque)
    _dead: tuple[float, ...] | None = None
    _lengths: list[tuple[list[float], list[float]]] | None = None
    _fixed_polls: float = 0.0  # polls sent by journeys on the fixed schedule, all run long
    _fixed_formula: float = 0.0  # ... and one per interval to their ready, plus one
    _gap: float | None = None
    _fresh: bool = False  # whether _gap reflects the journeys learned
    _since: int = 0  # journeys learned since the gap was computed

    def plan(self, rng: random.Random) -> AdaptivePlan | FixedPlan:
        gap = self.gap()
        if gap is None:
            return FixedPlan(self.interval, rng)
        return AdaptivePlan(self, rng, gap)

    def learn(self, result: JourneyResult, plan: PollPlan | None = None) -> None:
        """Remember a journey that reached ready (others bound no phase), and its plan."""
        bounds = result.intervals
        if result.outcome is not Outcome.READY or any(
            name not in bounds for name in (*TIMED_PHASES, "ready")
        ):
            return
        if len(self.seen) == self.window:
            self.seen.popleft()
        seen = Seen(
            lows=tuple(bounds[p][0] / _US for p in TIMED_PHASES),
            middles=tuple((bounds[p][0] + bounds[p][1]) / 2 / _US for p in TIMED_PHASES),
            ready=(bounds["ready"][0] + bounds["ready"][1]) / 2 / _US,
            polls=len(result.samples.get("poll", ())),
            gap=plan.gap if isinstance(plan, AdaptivePlan) else None,
        )
        self.seen.append(seen)
        if seen.gap is None:
            # What the fixed schedule really sent, against one poll per interval: at a
            # fine interval round trips and wake-ups stretch its gaps, and the budget
            # is what it sends, not what it would send on time.
            self._fixed_polls += seen.polls
            self._fixed_formula += seen.ready / self.interval + 1.0
        self._since += 1
        if self._since >= self.refresh or len(self.seen) <= self.warmup:
            self._dead = None
            self._lengths = None
            self._fresh = False

    def dead_time(self, phase: str) -> float:
        """How long `phase` lasts at least, in all but `dead_fraction` of recent journeys."""
        if self._dead is None:
            n = len(self.seen)
            rank = min(n - 1, int(self.dead_fraction * n))
            self._dead = tuple(
                sorted(seen.lows[i] for seen in self.seen)[rank] for i in range(len(TIMED_PHASES))
            )
        return self._dead[TIMED_PHASES.index(phase)]

    def _model(self, seen: Seen, gap: float) -> float:
        """Polls one journey would send with dense gap `gap`, by the rates alone.

        One per sparse gap while a phase cannot end yet and one per `gap` after (the
        dense grid starts up to one gap early, half on average), plus the one that
        sees ready.  What this leaves out (where the sparse and dense parts meet, the
        session's lag behind ready, retries) is measured: see `polls`.
        """
        sparse = self.max_gap_fraction * self.interval
        total = 1.0
        for phase, length in zip(TIMED_PHASES, seen.middles, strict=True):
            quiet = max(0.0, self.dead_time(phase) - gap / 2)
            total += min(length, quiet) / sparse + max(0.0, length - quiet) / gap
        return total

    def polls(self, gap: float, missed: float = 0.0) -> float:
        """Mean polls per recent journey with dense gap `gap`, by the model, plus `missed`.

        The mean of `_model` over the window, from each phase's sorted lengths and
        their prefix sums (O(log n) per phase: the bisection calls this often).
        """
        sparse = self.max_gap_fraction * self.interval
        n = len(self.seen)
        total = 1.0
        for i, phase in enumerate(TIMED_PHASES):
            lengths, prefix = self._sorted_lengths(i)
            quiet = max(0.0, self.dead_time(phase) - gap / 2)
            k = bisect.bisect_right(lengths, quiet)  # lengths[:k] end in the quiet part
            short = prefix[k]
            long = prefix[n] - prefix[k] - (n - k) * quiet
            total += (short + (n - k) * quiet) / sparse / n + long / gap / n
        return total + missed

    def _sorted_lengths(self, i: int) -> tuple[list[float], list[float]]:
        if self._lengths is None:
            self._lengths = []
            for j in range(len(TIMED_PHASES)):
                ordered = sorted(seen.middles[j] for seen in self.seen)
                self._lengths.append((ordered, [0.0, *itertools.accumulate(ordered)]))
        return self._lengths[i]

    def missed(self) -> float:
        """How many more polls the adaptive journeys sent than the model says, on average."""
        adaptive = [s for s in self.seen if s.gap is not None]
        if not adaptive:
            return 0.0
        return sum(s.polls - self._model(s, s.gap or 0.0) for s in adaptive) / len(adaptive)

    def budget(self) -> float:
        """Mean polls per recent journey at the fixed interval: the first jittered over
        one interval, then one per interval, and the one that sees ready; scaled by what
        the journeys on the fixed schedule (the first `warmup`, at least) really sent
        against that, when they sent fewer."""
        on_time = sum(seen.ready for seen in self.seen) / len(self.seen) / self.interval + 1.0
        if self._fixed_formula > 0:
            return on_time * min(1.0, self._fixed_polls / self._fixed_formula)
        return on_time

    def gap(self) -> float | None:
        """The dense gap that keeps recent journeys within the fixed schedule's polls.

        None means the fixed schedule: too few journeys learned, or nothing to save.
        Recomputed every `refresh` journeys (a bisection over the window), not per plan.
        """
        if self._fresh:
            return self._gap
        self._fresh = True
        self._since = 0
        self._gap = None
        if len(self.seen) < self.warmup:
            return None
        budget = self.budget()
        missed = self.missed()
        low, high = self.min_gap_fraction * self.interval, self.interval
        if self.polls(high, missed) >= budget:
            return None  # nothing to save (phases too short to skip): the fixed schedule
        if self.polls(low, missed) <= budget:
            self._gap = low
            return low
        # polls() falls as the gap grows: bisect for the smallest gap within budget.
        for _ in range(20):
            middle = (low + high) / 2
            if self.polls(middle, missed) > budget:
                low = middle
            else:
                high = middle
        self._gap = high
        return high


@dataclass
class AdaptivePlan:
    """One journey's schedule under an `Adaptive` planner."""

    planner: Adaptive
    rng: random.Random
    gap: float
    # phase -> where its dense polling starts (a random offset within one gap, so that
    # from journey to journey the polls fall at every point of the phase)
    starts: dict[str, float] = field(default_factory=dict)

    def first(self, create: Call) -> float:
        # Like the fixed schedule's first poll, jittered over one gap; queued's dense grid
        # (when queueing lasts) continues from it.
        first = create.received + self.rng.uniform(0.0, self.gap)
        if self.planner.dead_time("queued") <= 0:
            self.starts["queued"] = first
            return first
        return self._next("queued", create.sent, create.received)

    def next(self, create: Call, observations: Sequence[Observation]) -> float:
        last = observations[-1]
        phase = label(last)
        if phase not in TIMED_PHASES:
            return last.call.sent + self.planner.interval
        # When the current phase began: after the answer before its first (the create's
        # answer is `queued`).  Only needed on that first answer (the plan keeps the
        # phase's grid after that), so each poll costs O(1) however long the journey.
        begun = create.sent
        if phase not in self.starts and phase != "queued" and len(observations) > 1:
            begun = observations[-2].call.sent
        return self._next(phase, begun, last.call.sent)

    def _next(self, phase: str, begun: float, after: float) -> float:
        """The next poll after `after` (a send) in `phase`, which began no earlier than `begun`."""
        planner = self.planner
        dense_from = self.starts.get(phase)
        if dense_from is None:
            # The phase's grid gets a phase of its own, uniform within one gap.  When it
            # can end at once, it starts half to one and a half gaps after the poll that
            # saw it (one gap on average, so a new grid costs no extra poll); else up to
            # one gap before the earliest it ends in most journeys.
            offset = self.rng.random()
            dense_from = begun + planner.dead_time(phase) - offset * self.gap
            if dense_from < after + self.gap / 2:
                dense_from = after + (0.5 + offset) * self.gap
            self.starts[phase] = dense_from
        sparse = planner.max_gap_fraction * planner.interval
        if after + sparse <= dense_from:
            return after + sparse
        if after < dense_from:
            return dense_from
        # The dense grid's next point after `after`: sends land on (or a hair after) grid
        # points, so the point must clear `after` by half the smallest gap allowed.
        margin = planner.min_gap_fraction * planner.interval
        steps = math.ceil((after + margin / 2 - dense_from) / self.gap)
        return max(dense_from + steps * self.gap, after + margin)


__all__ = ["Adaptive", "AdaptivePlan", "FixedPlan", "PollPlan", "Seen"]
