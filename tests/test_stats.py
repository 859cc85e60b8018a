"""Nearest-rank percentiles from HDR histograms, checked against exact order statistics."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.analyse.stats import (
    Buckets,
    mean,
    nearest_rank,
    order_statistic_ranks,
    quantile,
    quantile_interval,
)
from bench.record.recorder import new_histogram


def test_nearest_rank_definition():
    assert nearest_rank(0.5, 10) == 5
    assert nearest_rank(0.9, 10) == 9  # 0.9*10 is 9.000000000000002 in floating point
    assert nearest_rank(0.99, 60) == 60  # hdrh's rounding would pick 59
    assert nearest_rank(1.0, 7) == 7
    assert nearest_rank(0.001, 7) == 1
    with pytest.raises(ValueError):
        nearest_rank(0.0, 5)
    with pytest.raises(ValueError):
        nearest_rank(0.5, 0)


def test_empty_histogram_has_no_quantile():
    assert quantile(new_histogram(), 0.5) is None


@given(
    st.lists(st.integers(min_value=1, max_value=3_600_000_000), min_size=1, max_size=300),
    st.sampled_from([0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]),
)
def test_quantile_matches_exact_order_statistic_within_hdr_precision(values, q):
    hist = new_histogram()
    for v in values:
        hist.record_value(v)
    exact = sorted(values)[math.ceil(q * len(values) - 1e-9) - 1]
    got = quantile(hist, q)
    # HDR reports the top of the exact value's bucket: never below it, within 0.1 %.
    assert exact <= got <= exact * 1.001 + 1


def test_buckets_value_at_rank_walks_counts():
    hist = new_histogram()
    rng = random.Random(3)
    values = [rng.randint(1, 1000) for _ in range(500)]
    for v in values:
        hist.record_value(v)
    buckets = Buckets.of(hist)
    assert buckets.total == 500
    assert buckets.value_at_rank(1) == min(values)
    assert buckets.value_at_rank(500) == max(values)
    with pytest.raises(ValueError):
        buckets.value_at_rank(501)


# --- confidence intervals for quantiles ------------------------------------------------


def _exact_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int, int] | None:
    """The textbook construction in exact integer arithmetic (Conover 1999, 3.2).

    With q = a/b, P(B <= k) = sum_{j<=k} C(n, j) a^j (b-a)^(n-j) / b^n; comparing
    numerators against alpha/2 * b^n keeps every step exact and fast.
    """
    qf = Fraction(q).limit_denominator(10_000)
    a, b = qf.numerator, qf.denominator
    half_alpha = Fraction(1 - confidence).limit_denominator(10_000) / 2
    scale = b**n
    low_bar = half_alpha * scale
    high_bar = (1 - half_alpha) * scale
    rest = [1] * (n + 1)  # rest[j] = (b - a)^(n - j)
    for j in range(n - 1, -1, -1):
        rest[j] = rest[j + 1] * (b - a)
    below, above = None, None
    total, comb, a_power = 0, 1, 1
    for k in range(n):
        total += comb * a_power * rest[k]
        if total <= low_bar:
            below = k
        if above is None and total >= high_bar:
            above = k
        comb = comb * (n - k) // (k + 1)
        a_power *= a
    if below is None or above is None:
        return None
    return below + 1, above + 1


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("n", [*range(1, 40), 57, 100, 250, 367, 368, 600])
def test_order_statistic_ranks_match_exact_binomial(n, q):
    assert order_statistic_ranks(n, q) == _exact_ranks(n, q)


def test_order_statistic_ranks_at_other_confidences():
    for n in (10, 50, 200):
        for confidence in (0.8, 0.9, 0.99):
            assert order_statistic_ranks(n, 0.5, confidence) == _exact_ranks(n, 0.5, confidence)


def test_too_few_samples_for_an_interval():
    # Both tails need (1-q)^n <= 2.5 % and q^n <= 2.5 %.
    assert order_statistic_ranks(5, 0.5) is None
    assert order_statistic_ranks(6, 0.5) == (1, 6)
    assert order_statistic_ranks(367, 0.99) is None
    assert order_statistic_ranks(368, 0.99) is not None
    assert order_statistic_ranks(3687, 0.999) is None
    assert order_statistic_ranks(3688, 0.999) == (3680, 3688)
    assert order_statistic_ranks(0, 0.5) is None
    with pytest.raises(ValueError):
        order_statistic_ranks(10, 1.0)
    with pytest.raises(ValueError):
        order_statistic_ranks(10, 0.5, confidence=1.0)


def test_large_n_normal_approximation_is_within_a_rank_of_exact():
    for n, q in [(4004, 0.5), (8000, 0.3), (11_200, 0.9)]:
        approx = order_statistic_ranks(n, q)
        exact = _exact_ranks(n, q)
        assert approx is not None and exact is not None
        assert abs(approx[0] - exact[0]) <= 1 and abs(approx[1] - exact[1]) <= 1


def test_large_n_ranks_bracket_the_point_estimate():
    for n in (10_000, 1_000_000):
        for q in (0.5, 0.9, 0.99, 0.999):
            lower, upper = order_statistic_ranks(n, q)
            assert lower <= nearest_rank(q, n) <= upper
            width = upper - lower
            assert width == pytest.approx(2 * 1.96 * math.sqrt(n * q * (1 - q)), abs=3)


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_interval_covers_the_true_quantile_at_least_nominally(q):
    """Seeded simulation: exponential samples, whose true quantile is -ln(1-q) * scale."""
    rng = random.Random(20240611)
    scale = 1_000_000
    truth = -math.log(1 - q) * scale
    trials, covered = 1000, 0
    for _ in range(trials):
        hist = new_histogram()
        for _ in range(80):
            hist.record_value(max(1, int(rng.expovariate(1 / scale))))
        low, high = quantile_interval(hist, q)
        covered += low / 1.001 <= truth <= high
    # Exact coverage at n=80 is >= 95 %; 1000 trials put 3 sd at about 2 %.
    assert covered / trials >= 0.93


def test_quantile_interval_from_histogram_and_buckets():
    hist = new_histogram()
    for v in range(1, 101):
        hist.record_value(v * 1000)
    buckets = Buckets.of(hist)
    lower, upper = order_statistic_ranks(100, 0.5)
    expected = (buckets.value_at_rank(lower), buckets.value_at_rank(upper))
    assert quantile_interval(hist, 0.5) == expected == quantile_interval(buckets, 0.5)
    # The textbook ranks for n = 100, read at HDR's 3-digit precision.
    assert (lower, upper) == (40, 61)
    assert expected == pytest.approx((40_000, 61_000), rel=1e-3)
    assert expected[0] <= quantile(hist, 0.5) <= expected[1]
    assert quantile_interval(hist, 0.99) is None  # 100 samples cannot bound the p99
    assert quantile_interval(new_histogram(), 0.5) is None


def test_mean():
    assert mean(new_histogram()) is None
    hist = new_histogram()
    for v in (1000, 2000, 3000, 6000):
        hist.record_value(v)
    assert mean(hist) == pytest.approx(3000, rel=1e-3)
    assert mean(Buckets.of(hist)) == mean(hist)
