"""Turnbull's NPMLE (bench.analyse.turnbull): hand-solved cases, properties, a seeded simulation."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.analyse.turnbull import innermost_intervals, npmle


def masses(observations):
    fit = npmle(observations, tolerance=1e-10, max_iterations=200_000)
    assert fit.converged
    return list(zip(fit.lefts, fit.rights, strict=True)), list(fit.masses), fit


# --- exact small cases, solved by hand ------------------------------------------------


def test_disjoint_intervals_share_the_mass_by_count():
    support, p, _ = masses([(0, 1, 1), (2, 3, 3)])
    assert support == [(0, 1), (2, 3)]
    assert p == pytest.approx([0.25, 0.75])


def test_overlapping_intervals_put_everything_in_their_intersection():
    # Ends in order: L0 L1 R2 R3; only L1 is followed by an upper end.
    support, p, _ = masses([(0, 2, 1), (1, 3, 1)])
    assert support == [(1, 2)]
    assert p == pytest.approx([1.0])


def test_an_interval_covering_both_innermost_ones_does_not_move_the_split():
    # Likelihood p1^2 (p1 + p2) p2 = p1^2 p2 with p1 + p2 = 1: maximal at p1 = 2/3.
    support, p, _ = masses([(0, 1, 2), (0, 3, 1), (2, 3, 1)])
    assert support == [(0, 1), (2, 3)]
    assert p == pytest.approx([2 / 3, 1 / 3], abs=1e-6)


def test_closed_intervals_touching_at_a_point_meet_there():
    # [0, 2] and [2, 4] share the point 2: the NPMLE puts all the mass on it.
    support, p, fit = masses([(0, 2, 1), (2, 4, 1)])
    assert support == [(2, 2)]
    assert p == pytest.approx([1.0])
    assert fit.quantile(0.5) == 2


def test_three_innermost_intervals():
    # [0,1], [0,3] x2, [2,10], [4,10]: ends L0 L0 R1 L2 R3 L4 R10 -> innermost [0,1],
    # [2,3], [4,10] with masses a, b, c.  Likelihood a (a+b)^2 (b+c) c; with the
    # multiplier 5 (the total weight), the stationarity conditions are
    #   1/a + 2/(a+b) = 2/(a+b) + 1/(b+c) = 1/(b+c) + 1/c = 5,
    # so a = b + c = 1/2 and a + b = 2c: a = 1/2, b = 1/6, c = 1/3.
    support, p, fit = masses([(0, 1, 1), (0, 3, 2), (2, 10, 1), (4, 10, 1)])
    assert support == [(0, 1), (2, 3), (4, 10)]
    assert p == pytest.approx([1 / 2, 1 / 6, 1 / 3], abs=1e-6)
    # Quantiles spread each mass evenly over its interval.
    assert fit.quantile(0.25) == pytest.approx(0.5)
    assert fit.quantile(0.5) == pytest.approx(1.0)
    assert fit.quantile(0.6) == pytest.approx(2.6, abs=1e-4)
    assert fit.quantile(1.0) == pytest.approx(10.0)


def test_bad_input():
    with pytest.raises(ValueError, match="no observations"):
        npmle([])
    with pytest.raises(ValueError, match="not an interval"):
        npmle([(2, 1, 1)])
    with pytest.raises(ValueError, match="weight"):
        npmle([(1, 2, 0)])


# --- properties -----------------------------------------------------------------------

intervals = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 20), st.integers(1, 4)).map(
        lambda t: (t[0], t[0] + t[1], t[2])
    ),
    min_size=1,
    max_size=25,
)


@given(intervals)
@settings(max_examples=150, deadline=None)
def test_support_is_the_innermost_intervals_and_the_kkt_conditions_hold(observations):
    fit = npmle(observations, tolerance=1e-9, max_iterations=200_000)
    lefts, rights = innermost_intervals([o[0] for o in observations], [o[1] for o in observations])
    assert list(fit.lefts) == lefts and list(fit.rights) == rights
    # Innermost intervals are disjoint, and each lies inside some observation.
    assert all(r < nl for r, nl in zip(rights, lefts[1:], strict=False))
    assert all(any(lo <= a and b <= hi for lo, hi, _ in observations)
               for a, b in zip(lefts, rights, strict=True))
    assert sum(fit.masses) == pytest.approx(1.0)
    assert min(fit.masses) >= 0
    # Gentleman & Geyer's conditions: no innermost interval's gradient exceeds the
    # total weight (by more than the tolerance), so no distribution does better.
    total = sum(w for _, _, w in observations)
    for a, b in zip(fit.lefts, fit.rights, strict=True):
        covering = [(lo, hi, w) for lo, hi, w in observations if lo <= a and b <= hi]
        s = sum(
            w / sum(m for la, rb, m in zip(fit.lefts, fit.rights, fit.masses, strict=True)
                    if lo <= la and rb <= hi)
            for lo, hi, w in covering
        )
        assert s / total <= 1 + 1e-6


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60),
       st.sampled_from([0.01, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0]))
@settings(max_examples=150, deadline=None)
def test_exact_data_give_the_empirical_distribution(values, q):
    fit = npmle([(v, v, 1) for v in values])
    distinct = sorted(set(values))
    assert list(fit.lefts) == distinct == list(fit.rights)
    assert list(fit.masses) == pytest.approx([values.count(v) / len(values) for v in distinct])
    # Its quantiles are the nearest-rank percentiles (bench.analyse.stats' definition).
    ordered = sorted(values)
    assert fit.quantile(q) == ordered[max(1, math.ceil(q * len(values) - 1e-9)) - 1]


# --- a seeded simulation --------------------------------------------------------------


def test_current_status_data_recover_a_phase_shorter_than_the_poll_interval():
    """A 10-40 ms phase seen only by whether a poll jittered over 250 ms came after it.

    The midpoint of [0, poll] reads it about 0.1 s long; the NPMLE from the same
    intervals finds the truth within a few milliseconds.
    """
    rng = random.Random(7)
    observations = []
    truth = []
    for _ in range(3000):
        phase = rng.uniform(10.0, 40.0)
        poll = rng.uniform(0.0, 250.0)
        truth.append(phase)
        observations.append((0.0, poll, 1) if poll >= phase else (poll, 250.0 + poll, 1))
    fit = npmle(observations)
    ordered = sorted(truth)
    for q in (0.5, 0.9, 0.99):
        true_q = ordered[math.ceil(q * len(ordered)) - 1]
        assert abs(fit.quantile(q) - true_q) < 4.0, q
    middles = sorted((lo + hi) / 2 for lo, hi, _ in observations)
    assert middles[len(middles) // 2] > 60.0  # what the midpoints alone would have said
