"""Nearest-rank percentiles from HDR histograms, checked against exact order statistics."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.recorder import new_histogram
from bench.stats import Buckets, nearest_rank, quantile


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
