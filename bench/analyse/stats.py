"""Pure statistics on HDR histograms: percentiles, their intervals and sampling variances.

Percentiles use the nearest-rank definition (Hyndman & Fan 1996, type 1): the
q-quantile of n samples is the ceil(q*n)-th smallest.  hdrh rounds the rank to
the nearest integer instead, which for n < 100 can pick the sample below; we
define it once, here, and use it everywhere (reports, comparisons, tests).
A value is reported as the highest value equivalent to its bucket (within 0.1 %).
Also here: the regularised incomplete beta function, and the sampling variance of one
run's statistic on a log scale (Maritz-Jarrett for a percentile, the delta method for
the mean), which bench.analyse.significance's mixed model of runs builds on.
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


# --- the regularised incomplete beta function ----------------------------------------
#
# I_x(a, b) by its continued fraction, evaluated with the modified Lentz method
# (Abramowitz & Stegun (1964), 26.5.8; Press et al., "Numerical Recipes", 3rd ed.
# (2007), section 6.4): the fraction converges fast for x < (a + 1) / (a + b + 2), and
# the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) covers the rest.  Needed for the
# distribution of an order statistic (below) and Student's t (bench.analyse.significance).

_BETA_TINY = 1e-300
_BETA_EPS = 1e-15


def _beta_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _BETA_TINY else _BETA_TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _BETA_TINY else _BETA_TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _BETA_TINY else _BETA_TINY
            h *= d * c
        if abs(d * c - 1.0) < _BETA_EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0 (the Beta(a, b) CDF)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a, b > 0, got {a}, {b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


# --- sampling variance of one run's statistic, on a log scale --------------------------
#
# A comparison looks at relative changes, so a run's statistic is taken on a log
# scale, y = ln x.  Its sampling variance (what another run of the very same
# distribution would give) is estimated without assuming a distribution:
#
# * a quantile: the nearest-rank q-quantile is the order statistic X(m), m = ceil(q n).
#   Maritz & Jarrett (1978), "A note on estimating the variance of the sample median",
#   JASA 73, 194-196: since X(m) = F^-1(U(m)) with U(m) ~ Beta(m, n - m + 1) (the m-th
#   of n uniform order statistics; David & Nagaraja, "Order Statistics", 3rd ed.
#   (2003), eq. 2.2.1), weight each observed order statistic by the chance that U(m)
#   falls in its rank cell, W_i = P((i-1)/n < U(m) <= i/n), and take
#   Var = sum W_i y_(i)^2 - (sum W_i y_(i))^2.  It needs no density estimate and
#   behaves well for small n (Wilcox, "Introduction to Robust Estimation and
#   Hypothesis Testing", 3rd ed. (2012), section 3.5.1, uses it to compare quantiles).
# * the mean: the delta method, Var(ln mean) = s^2 / (n mean^2).
#
# A statistic is only estimated when the run holds enough samples on both sides of
# it for its distribution-free 95 % interval (`order_statistic_ranks`: n >= 6 for
# the median, 29 for p90, 368 for p99; the mean follows the median).  Below that
# the rank cells at the end carry the estimate alone and the variance says little.
#
# How sure is such a variance?  For the mean, n - 1 degrees of freedom.  The
# Maritz-Jarrett variance averages the order statistics near rank m, about as many
# as fall within the central 95 % of U(m)'s distribution, 3.92 sqrt(n q (1 - q));
# that count is taken as its degrees of freedom (fewer than n - 1: the estimate leans
# on few order statistics, and overstating its df makes small p-values too small).  The
# raw per-row rejection rates this gives are printed by
# `benchmarks/compare_power.py` (docs/compare.md keeps them), and
# tests/test_significance.py checks them against alpha over seeded samples.
#
# HDR buckets report values to 0.1 % (3 significant digits): a uniform rounding error
# of that width adds (0.001)^2 / 12 to any log variance, a floor that also keeps a
# run whose every sample fell in one bucket from claiming zero variance.

BUCKET_LOG_VARIANCE = 0.001**2 / 12.0
# Past this a b / (a + b) (a = m, b = n - m + 1; about n q (1 - q)) the Beta(a, b) CDF
# is taken from its normal approximation, as `order_statistic_ranks` does for its
# binomial: the variance then moves by under 1.5 % (p90 of 1000 lognormal samples; 0.01 %
# for a median of 400) and costs a tenth of the time.
_EXACT_ORDER_VARIANCE_LIMIT = 50.0


def _log(value: float) -> float:
    # HDR's lowest discernible value is 1 us; an estimate of 0 us reads as 1 us.
    return math.log(max(float(value), 1.0))


def estimable(n: int, statistic_q: float | None) -> bool:
    """Whether a run of n samples has enough for a variance of this statistic (None: mean)."""
    return order_statistic_ranks(n, 0.5 if statistic_q is None else statistic_q) is not None


def log_quantile_variance(buckets: Buckets, q: float) -> float | None:
    """Maritz-Jarrett variance of ln X(m), m the nearest rank of q; None if not estimable."""
    n = buckets.total
    if n < 1 or not estimable(n, q):
        return None
    m = nearest_rank(q, n)
    a, b = float(m), float(n - m + 1)
    if a * b / (a + b) > _EXACT_ORDER_VARIANCE_LIMIT:
        mu = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
        dist = NormalDist(mu, sd)

        def cdf(x: float) -> float:
            return dist.cdf(x)
    else:
        mu = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))

        def cdf(x: float) -> float:
            return betainc(a, b, x)
    # Rank cells further than 10 sd from the quantile weigh less than 1e-20: skip them.
    low, high = mu - 10.0 * sd - 1.0 / n, mu + 10.0 * sd + 1.0 / n
    weights: list[float] = []
    logs: list[float] = []
    below = 0
    previous = None
    for value, count in zip(buckets.values, buckets.counts, strict=True):
        lo, hi = below / n, (below + count) / n
        below += count
        if hi < low or lo > high:
            continue
        if previous is None or previous[0] != lo:
            previous = (lo, cdf(lo))
        top = cdf(hi)
        weights.append(top - previous[1])
        logs.append(_log(value))
        previous = (hi, top)
    total = sum(weights)
    if total <= 0:
        return BUCKET_LOG_VARIANCE
    centre = sum(w * y for w, y in zip(weights, logs, strict=True)) / total
    spread = sum(w * (y - centre) ** 2 for w, y in zip(weights, logs, strict=True)) / total
    return spread + BUCKET_LOG_VARIANCE


def sampling_df(n: int, statistic_q: float | None) -> float:
    """Degrees of freedom of a run's sampling variance (see above); None: the mean."""
    if statistic_q is None:
        return max(1.0, n - 1.0)
    return max(1.0, 3.92 * math.sqrt(n * statistic_q * (1.0 - statistic_q)))


def log_mean_variance(buckets: Buckets) -> float | None:
    """Delta-method variance of ln(mean); None if not estimable (see `estimable`)."""
    n = buckets.total
    if not estimable(n, None):
        return None
    mu = mean(buckets)
    assert mu is not None
    if mu <= 0:
        return None
    var = sum(c * (v - mu) ** 2 for v, c in zip(buckets.values, buckets.counts, strict=True))
    return var / (n - 1) / n / (mu * mu) + BUCKET_LOG_VARIANCE
