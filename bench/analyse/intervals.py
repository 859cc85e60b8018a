"""Percentiles of `ready` and each phase from the intervals that hold every journey's truth.

Each ready journey records, per metric, an interval [lower, upper] that certainly
holds its true value (bench.core.censoring; binned by bench.record.censored).  Two
things follow, whatever the estimator:

- a *certain range* for each percentile: if lower_i <= true_i <= upper_i for every
  journey, the k-th smallest true value lies between the k-th smallest lower bound
  and the k-th smallest upper bound (order statistics are monotone), so the true
  nearest-rank q-quantile is within [q-quantile of the lowers, q-quantile of the
  uppers];
- an *estimate*, by one of two methods, chosen by what the polls saw:

  `midpoint`: the q-quantile of the intervals' middles (the harness's per-journey
  estimates).  Each is off by at most half its interval, and as long as the
  intervals are narrow beside the spread of the values this tracks the truth best
  (measured: benchmarks/harness_accuracy.py).

  `turnbull`: the q-quantile of Turnbull's nonparametric maximum-likelihood estimate
  from the intervals (bench.analyse.turnbull).  Used when at least MISSED_SHARE of the
  journeys' intervals reach down to 0, i.e. the polls usually missed the phase: the
  middles then put a phase shorter than the gap between two polls at half that gap,
  which says more about the polls than about the phase (a 25 ms phase between polls
  0.25 s apart reads about 0.1 s), while the intervals, all of them together, still
  pin it down (Turnbull 1976; for a phase that starts at the create, such data are
  "current status" data, whose NPMLE is consistent: Groeneboom & Wellner 1992).

Pure: counts in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.analyse.stats import nearest_rank
from bench.analyse.turnbull import Npmle, npmle

# A phase whose interval reaches 0 in at least this share of journeys is estimated
# from the intervals as a whole (Turnbull), not from their middles.
MISSED_SHARE = 0.5
MIDPOINT = "midpoint"
TURNBULL = "turnbull"

# (lower, upper) us -> journeys
Counts = Mapping[tuple[int, int], int]


@dataclass(frozen=True)
class IntervalEstimate:
    """One metric's distribution as the recorded intervals give it (microseconds)."""

    count: int
    method: str  # MIDPOINT or TURNBULL
    missed_share: float  # share of journeys whose interval reaches 0
    quantiles: Mapping[float, float]
    # the true q-quantile of these journeys certainly lies in this range
    certain: Mapping[float, tuple[float, float]]
    mean: float
    # (cumulative fraction, value) points of the estimated distribution
    cumulative: tuple[tuple[float, float], ...]


def _weighted_quantile(values: list[tuple[float, int]], q: float, total: int) -> float:
    """Nearest-rank q-quantile of sorted (value, count) pairs."""
    rank = nearest_rank(q, total)
    seen = 0
    for value, count in values:
        seen += count
        if seen >= rank:
            return value
    return values[-1][0]


def _merge(counts: Iterable[Counts]) -> dict[tuple[int, int], int]:
    merged: dict[tuple[int, int], int] = {}
    for part in counts:
        for pair, n in part.items():
            merged[pair] = merged.get(pair, 0) + n
    return merged


def estimate(
    counts: Counts | Iterable[Counts], quantiles: Iterable[float]
) -> IntervalEstimate | None:
    """The estimate and certain ranges of each q-quantile; None when there are no intervals.

    `counts` may be one mapping or several (e.g. every step's), which are added.
    """
    pairs = dict(counts) if isinstance(counts, Mapping) else _merge(counts)
    pairs = {pair: n for pair, n in pairs.items() if n > 0}
    total = sum(pairs.values())
    if total == 0:
        return None
    qs = tuple(quantiles)
    lowers = sorted((lo, n) for (lo, _), n in pairs.items())
    uppers = sorted((hi, n) for (_, hi), n in pairs.items())
    certain = {
        q: (_weighted_quantile(lowers, q, total), _weighted_quantile(uppers, q, total)) for q in qs
    }
    missed = sum(n for (lo, _), n in pairs.items() if lo <= 0) / total
    if missed >= MISSED_SHARE:
        fit = npmle((lo, hi, n) for (lo, hi), n in pairs.items())
        return IntervalEstimate(
            count=total,
            method=TURNBULL,
            missed_share=missed,
            quantiles={q: fit.quantile(q) for q in qs},
            certain=certain,
            mean=fit.mean(),
            cumulative=_npmle_curve(fit),
        )
    middles = sorted(((lo + hi) / 2, n) for (lo, hi), n in pairs.items())
    cumulative: list[tuple[float, float]] = []
    seen = 0
    for value, n in middles:
        seen += n
        cumulative.append((seen / total, value))
    return IntervalEstimate(
        count=total,
        method=MIDPOINT,
        missed_share=missed,
        quantiles={q: _weighted_quantile(middles, q, total) for q in qs},
        certain=certain,
        mean=sum(v * n for v, n in middles) / total,
        cumulative=tuple(cumulative),
    )


def _npmle_curve(fit: Npmle) -> tuple[tuple[float, float], ...]:
    """(F at the right end of each innermost interval holding mass, that end)."""
    points: list[tuple[float, float]] = []
    seen = 0.0
    for right, mass in zip(fit.rights, fit.masses, strict=True):
        if mass <= 0:
            continue
        seen += mass
        points.append((min(seen, 1.0), right))
    return tuple(points)


def bound_of(estimate_us: float, certain: tuple[float, float]) -> float:
    """How far the truth can be from the estimate, given the certain range (us)."""
    lo, hi = certain
    return max(abs(estimate_us - lo), abs(hi - estimate_us)) if math.isfinite(estimate_us) else 0


__all__ = [
    "MIDPOINT",
    "MISSED_SHARE",
    "TURNBULL",
    "IntervalEstimate",
    "bound_of",
    "estimate",
]
