"""Poll schedules (bench.core.polling): the fixed one unchanged, the adaptive one within its
budget and gaps, and what each makes of the truth, in seeded virtual-time runs of the real
driver against the real simulator model (tests/virtual_runs.py: no sockets, no sleeps)."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest
from virtual_runs import run

from bench.analyse.intervals import estimate
from bench.core.journey import TIMED_PHASES, Call, JourneyResult, Observation
from bench.core.outcomes import Outcome
from bench.core.polling import Adaptive, AdaptivePlan, FixedPlan, Seen
from bench.record.censored import bin_interval
from bench.simulator.truth import true_durations

POLL = 0.25


def percentile(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


def test_fixed_plan_is_the_drivers_own_schedule():
    """A journey with FixedPlan polls at exactly the instants it does with no plan."""
    without = run(users=(2,), step_time=20, seed=5)
    with_plan = run(users=(2,), step_time=20, seed=5, planner=_FixedPlanner())
    assert [[c.sent for c in f.journey.poll_calls] for f in without] == [
        [c.sent for c in f.journey.poll_calls] for f in with_plan
    ]


class _FixedPlanner:
    def plan(self, rng):
        return FixedPlan(POLL, rng)

    def learn(self, result, plan):
        pass


def _ready(seconds_by_phase: dict[str, float], polls: int, seen: bool = True) -> JourneyResult:
    """A ready journey whose intervals are +-10 % around the given values (from 0 if unseen)."""
    us = 1_000_000
    result = JourneyResult(Outcome.READY, samples={"poll": [1000.0] * polls})
    result.intervals = {
        p: (v * us * 0.9, v * us * 1.1) if seen or p == "ready" else (0.0, v * us * 2.0)
        for p, v in seconds_by_phase.items()
    }
    return result


def test_adaptive_is_the_fixed_schedule_until_it_has_learned():
    planner = Adaptive(POLL, warmup=3)
    assert isinstance(planner.plan(random.Random(1)), FixedPlan)
    for _ in range(3):
        planner.learn(_ready({"queued": 0.02, "provisioning": 1.5, "configuring": 0.45,
                              "ready": 2.0}, polls=9))
    plan = planner.plan(random.Random(1))
    assert isinstance(plan, AdaptivePlan)
    # Provisioning cannot end in its first 1.35 s: polled every 2 intervals until
    # about then, then densely.
    create = Call(0.0, 0.002)
    seen = [Observation(Call(0.01, 0.012), "processing", "provisioning")]
    assert plan.next(create, seen) == pytest.approx(0.01 + 2 * POLL)
    # A journey that failed teaches nothing.
    planner.learn(JourneyResult(Outcome.FAILED))
    assert len(planner.seen) == 3


def test_adaptive_falls_back_to_fixed_when_there_is_nothing_to_save():
    # Phases shorter than the interval: no poll can be skipped.
    planner = Adaptive(POLL, warmup=3)
    for _ in range(5):
        planner.learn(_ready({"queued": 0.003, "provisioning": 0.15, "configuring": 0.05,
                              "ready": 0.2}, polls=2, seen=False))
    assert planner.gap() is None
    assert isinstance(planner.plan(random.Random(1)), FixedPlan)


@pytest.fixture(scope="module")
def default_runs():
    """The calibrated default profile at 8 and 32 users, fixed and adaptive, same seed."""
    runs = {}
    for users in (8, 32):
        runs[("fixed", users)] = run(users=(users,), step_time=60, seed=3)
        runs[("adaptive", users)] = run(users=(users,), step_time=60, seed=3,
                                        planner=Adaptive(POLL))
    return runs


@pytest.mark.parametrize("users", [8, 32])
def test_adaptive_sends_no_more_polls_than_the_fixed_interval(default_runs, users):
    def polls(finished):
        ready = [f for f in finished if f.result.outcome is Outcome.READY]
        return statistics.mean(len(f.journey.poll_calls) for f in ready)

    fixed = polls(default_runs[("fixed", users)])
    adaptive = polls(default_runs[("adaptive", users)])
    # The budget is met on average over the recent journeys, so within a few percent.
    assert adaptive <= fixed * 1.03, (adaptive, fixed)


@pytest.mark.parametrize("plan", ["fixed", "adaptive"])
@pytest.mark.parametrize("users", [8, 32])
def test_intervals_hold_the_truth_and_gaps_stay_bounded(default_runs, plan, users):
    for f in default_runs[(plan, users)]:
        if f.result.outcome is not Outcome.READY:
            continue
        true = true_durations(f.truth)
        for metric in (*TIMED_PHASES, "ready"):
            lo, hi = f.result.intervals[metric]
            assert lo - 1 <= true.get(metric, 0.0) * 1e6 <= hi + 1, (metric, f.result.intervals)
        sends = [c.sent for c in f.journey.poll_calls]
        gaps = [b - a for a, b in itertools.pairwise(sends)]
        assert max(gaps, default=0) <= 2 * POLL + 0.01


@pytest.mark.parametrize("users", [8, 32])
def test_ready_within_half_an_interval_and_queued_within_a_quarter(default_runs, users):
    """What the report shows (bench.analyse.intervals on the binned intervals) vs the truth."""
    ready = [f for f in default_runs[("adaptive", users)] if f.result.outcome is Outcome.READY]
    assert len(ready) >= 200
    for metric, bound in (("ready", POLL / 2 + 0.010), ("queued", POLL / 4)):
        counts: dict[tuple[int, int], int] = {}
        for f in ready:
            pair = bin_interval(*f.result.intervals[metric])
            counts[pair] = counts.get(pair, 0) + 1
        est = estimate(counts, (0.5, 0.9, 0.99))
        assert est is not None
        truth = [true_durations(f.truth).get(metric, 0.0) for f in ready]
        for q in (0.5, 0.9, 0.99):
            assert abs(est.quantiles[q] / 1e6 - percentile(truth, q)) <= bound, (metric, q)


def test_the_budget_model_sums_the_per_journey_model():
    """polls() (sorted prefix sums, for the bisection) is the mean of _model over the window."""
    planner = Adaptive(POLL)
    rng = random.Random(1)
    for _ in range(200):
        lengths = (rng.uniform(0.01, 0.04), rng.uniform(1.0, 2.5), rng.uniform(0.3, 0.7))
        planner.seen.append(Seen(tuple(x * 0.8 for x in lengths), lengths, sum(lengths), 9,
                                 0.2 if rng.random() < 0.5 else None))
    for gap in (0.03, 0.1, 0.2, 0.25):
        direct = sum(planner._model(s, gap) for s in planner.seen) / len(planner.seen)
        assert planner.polls(gap) == pytest.approx(direct, rel=1e-12)
    # The gap found keeps the corrected model within the budget, as densely as it can.
    gap = planner.gap()
    assert gap is not None
    assert planner.polls(gap, planner.missed()) <= planner.budget() + 1e-6


def test_the_budget_is_what_the_fixed_schedule_really_sent():
    # At a fine interval round trips stretch the fixed schedule's gaps: it sends fewer
    # polls than one per interval, and the adaptive plan must not spend more than that.
    planner = Adaptive(POLL, warmup=3)
    lengths = {"queued": 0.02, "provisioning": 1.5, "configuring": 0.48, "ready": 2.0}
    for _ in range(5):
        planner.learn(_ready(lengths, polls=8))  # one per interval would be 2.0 / 0.25 + 1 = 9
    assert planner.budget() == pytest.approx(9 * 8 / 9)
    # Sending more than one per interval does not raise it.
    planner = Adaptive(POLL, warmup=3)
    for _ in range(5):
        planner.learn(_ready(lengths, polls=12))
    assert planner.budget() == pytest.approx(9)
