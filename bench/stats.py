"""Pure statistics on HDR histograms: nearest-rank percentiles with distribution-free intervals.

Percentiles use the nearest-rank definition (Hyndman & Fan 1996, type 1): the
q-quantile of n samples is the ceil(q*n)-th smallest.  hdrh rounds the rank to
the nearest integer instead, which for n < 100 can pick the sample below; we
define it once, here, and use it everywhere (reports, comparisons, tests).
A value is reported as the highest value equivalent to its bucket (within 0.1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

# q*n computed in floating point can land a hair above an integer (0.9*10 ->
# 9.000000000000002); without this slack ceil() would skip a rank.
_RANK_EPSILON = 1e-9


@dataclass(frozen=True)
class Buckets:
    """A histogram's non-empty buckets in value order: (highest equivalent value, count)."""

    values: tuple[int, ...]
    counts: tuple[int, ...]
    total: int

    @classmethod
    def of(cls, histogram: HdrHistogram) -> Buckets:
        values: list[int] = []
        counts: list[int] = []
        for item in histogram.get_recorded_iterator():
            values.append(histogram.get_highest_equivalent_value(item.value_iterated_to))
            counts.append(item.count_at_value_iterated_to)
        return cls(tuple(values), tuple(counts), sum(counts))

    def value_at_rank(self, rank: int) -> int:
        """The rank-th smallest sample (1-based)."""
        if not 1 <= rank <= self.total:
            raise ValueError(f"rank {rank} outside 1..{self.total}")
        seen = 0
        for value, count in zip(self.values, self.counts, strict=True):
            seen += count
            if seen >= rank:
                return value
        raise AssertionError("unreachable: counts add up to total")


def nearest_rank(q: float, n: int) -> int:
    """1-based rank of the q-quantile (0 < q <= 1) among n samples."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    if n < 1:
        raise ValueError("no samples")
    return min(n, max(1, math.ceil(q * n - _RANK_EPSILON)))


def quantile(histogram: HdrHistogram | Buckets, q: float) -> int | None:
    """The q-quantile (nearest rank) in the histogram's unit, or None when it is empty."""
    buckets = histogram if isinstance(histogram, Buckets) else Buckets.of(histogram)
    if buckets.total == 0:
        return None
    return buckets.value_at_rank(nearest_rank(q, buckets.total))
