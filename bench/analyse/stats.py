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
from statistics import NormalDist

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
        # Walk the raw counts array: hdrh's recorded iterator does the same walk with
        # several Python calls per bucket and is about 30x slower, which a report of a
        # dozen steps times eight metrics would feel.
        values: list[int] = []
        counts: list[int] = []
        highest = histogram.get_highest_equivalent_value
        value_at = histogram.get_value_from_index
        for index, count in enumerate(histogram.counts[: histogram.counts_len]):
            if count:
                values.append(highest(value_at(index)))
                counts.append(count)
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


# --- distribution-free confidence intervals for a quantile --------------------------
#
# Conover, "Practical Nonparametric Statistics", 3rd ed. (1999), section 3.2, and
# Hahn & Meeker, "Statistical Intervals" (1991), section 5.2: if B ~ Binomial(n, q)
# counts the samples at or below the true q-quantile, then for order statistics
# X(l) <= X(u)
#     P(X(l) <= x_q <= X(u)) >= P(l <= B <= u - 1) = F(u - 1) - F(l - 1),
# whatever the distribution (ties only make it more likely).  We take l as the
# largest rank with F(l - 1) <= alpha/2 and u the smallest with F(u - 1) >= 1 - alpha/2
# (equal tails, coverage >= confidence).  When no such rank lies within 1..n the
# sample is too small for a two-sided interval at that confidence: None.
#
# F is summed exactly (log-space pmf at the start of a band of +-12 standard
# deviations around n*q, then the pmf recurrence) while the variance n*q*(1-q) is
# small; the mass outside that band is below 1e-30.  Beyond the limit the normal
# approximation with continuity correction (Conover, eq. 3.2.5) is within a rank
# of the exact answer and costs O(1).

_EXACT_VARIANCE_LIMIT = 1000.0


def _binomial_cdf_band(n: int, q: float, lo: int, hi: int) -> list[float]:
    """F(k) = P(B <= k) for B ~ Binomial(n, q), k = lo..hi, neglecting the mass below lo."""
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(lo + 1)
        - math.lgamma(n - lo + 1)
        + lo * math.log(q)
        + (n - lo) * math.log1p(-q)
    )
    pmf = math.exp(log_pmf)
    odds = q / (1.0 - q)
    cdf: list[float] = []
    total = 0.0
    for k in range(lo, hi + 1):
        total += pmf
        cdf.append(min(total, 1.0))
        pmf *= (n - k) / (k + 1) * odds
    return cdf


def order_statistic_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks (l, u) of a distribution-free interval for the q-quantile of n samples.

    None when n is too small for an interval at this confidence (e.g. n < 6 for the
    median at 95 %, n < 368 for the 99th percentile, n < 3688 for the 99.9th).
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 1:
        return None
    half_alpha = (1.0 - confidence) / 2.0
    # Both ends exist only if P(B = 0) = (1-q)^n <= alpha/2 and P(B = n) = q^n <= alpha/2.
    log_half_alpha = math.log(half_alpha)
    if n * math.log1p(-q) > log_half_alpha or n * math.log(q) > log_half_alpha:
        return None
    variance = n * q * (1.0 - q)
    if variance > _EXACT_VARIANCE_LIMIT:
        z = NormalDist().inv_cdf(1.0 - half_alpha)
        sd = math.sqrt(variance)
        lower = math.floor(n * q - z * sd + 0.5)
        upper = math.ceil(n * q + z * sd + 0.5)
    else:
        band = int(12 * math.sqrt(variance)) + 12
        lo = max(0, math.floor(n * q) - band)
        hi = min(n, math.ceil(n * q) + band)
        cdf = _binomial_cdf_band(n, q, lo, hi)
        # l - 1 is the largest k with F(k) <= alpha/2 (F(lo - 1) is ~0, so at least lo - 1);
        # u - 1 the smallest k with F(k) >= 1 - alpha/2 (F(hi) is ~1).
        lower = lo + sum(1 for f in cdf if f <= half_alpha)
        upper = 1 + next((lo + i for i, f in enumerate(cdf) if f >= 1.0 - half_alpha), hi)
    if lower < 1 or upper > n:
        return None
    return lower, upper


def quantile_interval(
    histogram: HdrHistogram | Buckets, q: float, confidence: float = 0.95
) -> tuple[int, int] | None:
    """A distribution-free confidence interval for the q-quantile, in the histogram's unit.

    The interval is [X(l), X(u)] for the order-statistic ranks of
    `order_statistic_ranks`; None when the histogram holds too few samples for one.
    Values are bucket tops, like `quantile`.
    """
    buckets = histogram if isinstance(histogram, Buckets) else Buckets.of(histogram)
    ranks = order_statistic_ranks(buckets.total, q, confidence)
    if ranks is None:
        return None
    return buckets.value_at_rank(ranks[0]), buckets.value_at_rank(ranks[1])


def mean(histogram: HdrHistogram | Buckets) -> float | None:
    """The mean in the histogram's unit (bucket tops, so at most 0.1 % high); None when empty."""
    buckets = histogram if isinstance(histogram, Buckets) else Buckets.of(histogram)
    if buckets.total == 0:
        return None
    return sum(v * c for v, c in zip(buckets.values, buckets.counts, strict=True)) / buckets.total
