"""Interval-censored distributions: Turnbull's nonparametric MLE, by self-consistency (EM).

A poll only brackets a transition, so each journey tells us that its true duration
lies somewhere in an interval [lo, hi], not where.  Dropping the interval for its
midpoint biases what the midpoint misplaces: a phase shorter than the poll interval
is seen by few journeys, and the tails are widened by the bracket's own width.

The nonparametric maximum-likelihood estimate (NPMLE) of the distribution F given
such intervals maximises sum_i w_i log P_F([lo_i, hi_i]) over all distributions
(Turnbull 1976, JRSS B 38:290-295).  Its mass lies only on the *innermost
intervals* (Peto 1973, Applied Statistics 22:86-91): each [l, r] with l some
observation's lower end, r some observation's upper end, and no other end strictly
between.  On those m intervals with masses p, an observation covers a contiguous
run a_i..b_i of them, and the self-consistency (EM) update is

    p_j <- p_j * s_j / W,   s_j = sum_{i covers j} w_i / (sum_{k=a_i..b_i} p_k),

W the total weight (Turnbull 1976, eq. 3.1; Dempster, Laird & Rubin 1977).  Both
sums are over contiguous runs, so an iteration is two prefix sums: O(n + m).

The log-likelihood l is concave and its gradient at p is s, with sum_j s_j p_j = W,
so for any other distribution q, l(q) - l(p) <= max_j s_j - W: the iteration stops
when that bound, per unit weight, is below `tolerance` (the Kuhn-Tucker condition
of Gentleman & Geyer 1994, Biometrika 81:618-623, made a certificate).  The NPMLE
says how much mass each innermost interval holds, not where inside it; quantiles
here spread it evenly across the interval, so with exact data (zero-width
intervals) they are the nearest-rank percentiles of bench.analyse.stats.

Pure: numbers in, numbers out (numpy for the two prefix sums per iteration).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Stop when no distribution can beat the estimate's log-likelihood by more than this
# much per observation (a certificate, see the module's docstring).
TOLERANCE = 1e-5
MAX_ITERATIONS = 20_000
# q*W in floating point can land a hair above the mass it means (see stats._RANK_EPSILON).
_RANK_EPSILON = 1e-9


@dataclass(frozen=True)
class Npmle:
    """Turnbull's estimate: masses on disjoint innermost intervals [lefts[j], rights[j]]."""

    lefts: tuple[float, ...]
    rights: tuple[float, ...]
    masses: tuple[float, ...]  # sum to 1
    total: float  # the observations' total weight (count)
    iterations: int
    converged: bool
    # Upper bound on how much any distribution could raise the mean log-likelihood.
    gap: float

    def cdf(self, x: float) -> float:
        """F(x), with each interval's mass spread evenly across it (a point mass at its value)."""
        total = 0.0
        for left, right, mass in zip(self.lefts, self.rights, self.masses, strict=True):
            if x >= right:
                total += mass
            elif x >= left:
                total += mass * (x - left) / (right - left) if right > left else mass
            else:
                break
        return min(total, 1.0)

    def quantile(self, q: float) -> float:
        """The q-quantile: the least x with F(x) >= q (F as in `cdf`).

        With zero-width intervals (exact data) this is the nearest-rank percentile.
        """
        if not 0 < q <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {q}")
        if not self.masses:
            raise ValueError("no observations")
        target = q - _RANK_EPSILON
        seen = 0.0
        for left, right, mass in zip(self.lefts, self.rights, self.masses, strict=True):
            if mass <= 0:
                continue
            if seen + mass >= target:
                if right <= left:
                    return left
                return left + (right - left) * max(0.0, (target - seen) / mass)
            seen += mass
        # Rounding left the masses a hair short of q: the highest supported value.
        return next(r for r, m in zip(reversed(self.rights), reversed(self.masses),
                                      strict=True) if m > 0)

    def mean(self) -> float:
        """The mean, each interval's mass at its midpoint."""
        return sum((lft + r) / 2 * m for lft, r, m in zip(self.lefts, self.rights, self.masses,
                                                          strict=True))


def innermost_intervals(
    lows: Iterable[float], highs: Iterable[float]
) -> tuple[list[float], list[float]]:
    """Peto's / Turnbull's innermost intervals of closed intervals [lows[i], highs[i]].

    Every end is sorted with lower ends before upper ends at equal values (the
    intervals are closed, so [1, 2] and [2, 3] share the point 2); an innermost
    interval is a lower end immediately followed by an upper end.
    """
    ends = sorted([(lo, 0) for lo in lows] + [(hi, 1) for hi in highs])
    lefts: list[float] = []
    rights: list[float] = []
    for (value, kind), (following, next_kind) in itertools.pairwise(ends):
        if kind == 0 and next_kind == 1:
            lefts.append(value)
            rights.append(following)
    return lefts, rights


def npmle(
    observations: Iterable[tuple[float, float, float]],
    *,
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> Npmle:
    """Turnbull's NPMLE from (lo, hi, weight) observations (lo <= hi, weight > 0).

    Weights are counts of identical intervals (how the recorder stores them).  Raises
    ValueError for an empty input, an interval with lo > hi, or a weight <= 0.
    """
    rows = [(float(lo), float(hi), float(w)) for lo, hi, w in observations]
    if not rows:
        raise ValueError("no observations")
    for lo, hi, w in rows:
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"not an interval: [{lo}, {hi}]")
        if not w > 0:
            raise ValueError(f"weight must be > 0, got {w}")
    lo = np.array([r[0] for r in rows])
    hi = np.array([r[1] for r in rows])
    weight = np.array([r[2] for r in rows])
    left_list, right_list = innermost_intervals(lo.tolist(), hi.tolist())
    lefts = np.array(left_list)
    rights = np.array(right_list)
    m = len(lefts)
    # Observation i covers innermost intervals a_i..b_i: those inside [lo_i, hi_i].
    # Innermost intervals are disjoint and sorted, so both ends are binary searches.
    first = np.searchsorted(lefts, lo, side="left")
    last = np.searchsorted(rights, hi, side="right") - 1
    if np.any(last < first):  # cannot happen: every interval contains an innermost one
        raise AssertionError("an observation covers no innermost interval")
    total = float(weight.sum())

    def gradient(p: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate(([0.0], np.cumsum(p)))
        covered = cumulative[last + 1] - cumulative[first]
        ratio = weight / np.maximum(covered, 1e-300)
        # s_j = sum over observations covering j: a difference array, then a prefix sum.
        delta = np.bincount(first, ratio, m + 1) - np.bincount(last + 1, ratio, m + 1)
        return np.cumsum(delta)[:m]

    def loglik(p: np.ndarray) -> float:
        cumulative = np.concatenate(([0.0], np.cumsum(p)))
        covered = cumulative[last + 1] - cumulative[first]
        return float(np.dot(weight, np.log(np.maximum(covered, 1e-300))))

    def em(p: np.ndarray, s: np.ndarray) -> np.ndarray:
        q = p * s / total
        return q / q.sum()

    # Start from the share of observations covering each innermost interval.
    coverage = np.cumsum(np.bincount(first, weight, m + 1) - np.bincount(last + 1, weight, m + 1))
    p = coverage[:m] / coverage[:m].sum()
    iterations = 0
    gap = math.inf
    while True:
        s = gradient(p)
        gap = float(s.max()) / total - 1.0
        if gap <= tolerance or iterations >= max_iterations:
            break
        # SQUAREM (Varadhan & Roland 2008, Scand. J. Stat. 35:335-353, scheme S3): two
        # EM steps give a direction; step along it as far as it keeps the likelihood up,
        # then one EM step to land back on a self-consistent point.  Plain EM crawls here
        # (thousands of steps to empty the intervals that should hold nothing).
        p1 = em(p, s)
        p2 = em(p1, gradient(p1))
        r = p1 - p
        v = p2 - p1 - r
        v_norm = float(np.sqrt(np.dot(v, v)))
        alpha = -float(np.sqrt(np.dot(r, r))) / v_norm if v_norm > 0 else -1.0
        alpha = min(alpha, -1.0)
        candidate = p2
        if alpha < -1.0:
            jumped = np.maximum(p - 2 * alpha * r + alpha * alpha * v, 0.0)
            if jumped.sum() > 0:
                jumped = em(jumped / jumped.sum(), gradient(jumped / jumped.sum()))
                if loglik(jumped) >= loglik(p2):
                    candidate = jumped
        p = candidate
        iterations += 1
    return Npmle(
        lefts=tuple(lefts.tolist()),
        rights=tuple(rights.tolist()),
        masses=tuple(p.tolist()),
        total=total,
        iterations=iterations,
        converged=gap <= tolerance,
        gap=max(gap, 0.0),
    )


__all__ = ["MAX_ITERATIONS", "TOLERANCE", "Npmle", "innermost_intervals", "npmle"]
