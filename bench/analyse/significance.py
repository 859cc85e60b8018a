"""Pure two-sample tests on histogram buckets and counts: Mann-Whitney U, quantiles, Fisher, Holm.

Inputs are `bench.analyse.stats.Buckets` (a histogram's sorted (value, count) pairs) or
plain counts; nothing here touches files, Locust or randomness.  Every function
names its source.  Why these tests (docs/compare.md has the long version):

- Mann-Whitney U answers "is one side stochastically larger" (a location or
  general shift).  It is the right test for a mean/median-like row, and the
  wrong one for p99: a pure tail change hardly moves U, and a body shift can be
  significant while p99 is unchanged.
- For a percentile we use the two-sample quantile test (Mood's median test
  generalised to any quantile): pool both samples, cut at the pooled
  q-quantile, and test whether the two sides put different fractions at or
  below the cut.  Under "same distribution" the count on one side is exactly
  hypergeometric given the pooled sample, whatever the distribution and
  whatever the ties (histogram buckets are ties), so the false-positive rate is
  at most alpha by construction; it tests the quantile itself, not a shift.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bench.analyse.stats import BUCKET_LOG_VARIANCE, Buckets, betainc, nearest_rank

# Exact permutation distribution of U when the pooled sample is this small (the
# dynamic programme below is O(N * n_a * sum of ranks)); beyond it the normal
# approximation with tie-corrected variance is accurate (Lehmann 1975, ch. 1.3).
EXACT_MANN_WHITNEY_MAX_N = 30
# Fisher's exact test sums over min(margins)+1 tables; past this the pooled z test
# on two proportions is accurate and O(1).
EXACT_FISHER_MAX_MARGIN = 2000
# Relative slack when comparing probabilities of equally extreme outcomes, so
# floating-point noise does not drop a table/statistic that ties the observed one
# (R's fisher.test uses 1 + 1e-7 for the same reason).
_RELATIVE_TIE = 1e-7


@dataclass(frozen=True)
class TestResult:
    """A test's outcome: the p-value, the statistic and how it was computed."""

    p_value: float
    statistic: float
    method: str


def buckets_of(values: Iterable[float]) -> Buckets:
    """Plain sample values as Buckets (for per-run percentiles across runs)."""
    counted = sorted(Counter(values).items())
    return Buckets(
        tuple(v for v, _ in counted), tuple(c for _, c in counted), sum(c for _, c in counted)
    )


def _normal_sf2(z: float) -> float:
    """Two-sided normal tail P(|Z| >= z) for z >= 0."""
    return math.erfc(z / math.sqrt(2.0))


# --- Mann-Whitney U -------------------------------------------------------------------
#
# Mann & Whitney (1947); ties by midranks and the tie-corrected variance
#     Var(U) = n_a n_b / 12 * [(N + 1) - sum(t^3 - t) / (N (N - 1))]
# (Lehmann, "Nonparametrics" (1975), eq. 1.3.28; Conover (1999) section 5.1),
# normal approximation with continuity correction 1/2 (Conover 5.1, eq. 5).
# For small pooled samples the exact permutation distribution of the midrank sum
# is counted (Lehmann 1975, section 1.3: it stays exact with ties, as a conditional
# distribution given the tie pattern).


def _merged(a: Buckets, b: Buckets) -> list[tuple[int, int, int]]:
    """(value, count in a, count in b) per distinct value of the pooled sample, in order."""
    out: list[tuple[int, int, int]] = []
    i = j = 0
    while i < len(a.values) or j < len(b.values):
        if j >= len(b.values) or (i < len(a.values) and a.values[i] < b.values[j]):
            out.append((a.values[i], a.counts[i], 0))
            i += 1
        elif i >= len(a.values) or b.values[j] < a.values[i]:
            out.append((b.values[j], 0, b.counts[j]))
            j += 1
        else:
            out.append((a.values[i], a.counts[i], b.counts[j]))
            i += 1
            j += 1
    return out


@lru_cache(maxsize=256)
def _rank_sum_distribution(doubled_ranks: tuple[int, ...], n_a: int) -> dict[int, int]:
    """How many size-n_a subsets of the pooled items have each sum of doubled midranks."""
    # ways[k] maps a partial sum to the number of k-subsets of the items seen so far.
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n_a)]
    for rank in doubled_ranks:
        for k in range(min(n_a, len(doubled_ranks)), 0, -1):
            target = ways[k]
            for total, count in ways[k - 1].items():
                key = total + rank
                target[key] = target.get(key, 0) + count
    return ways[n_a]


@dataclass(frozen=True)
class MannWhitney(TestResult):
    """U of side a; `effect` = U / (n_a n_b) = P(a > b) + P(a = b) / 2 (0.5: no shift)."""

    effect: float = 0.5


def mann_whitney(a: Buckets, b: Buckets) -> MannWhitney:
    """Two-sided Mann-Whitney U test of a vs b from their buckets (ties by midranks)."""
    n_a, n_b = a.total, b.total
    if n_a == 0 or n_b == 0:
        raise ValueError("Mann-Whitney U needs samples on both sides")
    n = n_a + n_b
    # Doubled ranks keep every midrank an integer: exact sums, no float drift.
    doubled_rank_sum_a = 0
    tie_term = 0
    below = 0
    doubled_ranks: list[int] = []
    for _, count_a, count_b in _merged(a, b):
        t = count_a + count_b
        doubled_midrank = 2 * below + t + 1
        doubled_rank_sum_a += count_a * doubled_midrank
        tie_term += t**3 - t
        below += t
        if n <= EXACT_MANN_WHITNEY_MAX_N:
            doubled_ranks.extend([doubled_midrank] * t)
    doubled_u = doubled_rank_sum_a - n_a * (n_a + 1)
    u = doubled_u / 2.0
    effect = u / (n_a * n_b)
    mean_u = n_a * n_b / 2.0
    if n <= EXACT_MANN_WHITNEY_MAX_N:
        counts = _rank_sum_distribution(tuple(doubled_ranks), n_a)
        offset = n_a * (n_a + 1)
        observed = abs(doubled_u - 2 * mean_u)
        extreme = sum(
            c for s, c in counts.items() if abs(s - offset - 2 * mean_u) >= observed - 1e-9
        )
        p = extreme / math.comb(n, n_a)
        return MannWhitney(min(1.0, p), u, "mann-whitney exact", effect)
    variance = n_a * n_b / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every sample ties: no evidence of any difference
        return MannWhitney(1.0, u, "mann-whitney normal", effect)
    z = max(0.0, abs(u - mean_u) - 0.5) / math.sqrt(variance)
    return MannWhitney(min(1.0, _normal_sf2(z)), u, "mann-whitney normal", effect)


# --- two proportions ------------------------------------------------------------------
#
# Fisher's exact test (Fisher 1935; Agresti, "Categorical Data Analysis", 3rd ed.
# (2013), section 3.5): given the margins, the hits on side a are hypergeometric.
# Two-sided p sums the tables no more probable than the observed one (the
# convention of R's fisher.test).  For large margins, the pooled two-proportion
# z test (Agresti 2013, section 3.1.3; Fleiss, Levin & Paik (2003), section 2.3).


def _log_hypergeom(x: int, n_a: int, n_b: int, hits: int) -> float:
    """log P(X = x), X = hits on side a when `hits` of n_a + n_b items are drawn."""
    return _log_comb(n_a, x) + _log_comb(n_b, hits - x) - _log_comb(n_a + n_b, hits)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(
    hits_a: int, n_a: int, hits_b: int, n_b: int, alternative: str = "two-sided"
) -> float:
    """p of Fisher's exact test; alternative "greater" means side b's rate is higher."""
    _check_counts(hits_a, n_a, hits_b, n_b)
    hits = hits_a + hits_b
    lo, hi = max(0, hits - n_b), min(hits, n_a)
    if lo == hi:
        return 1.0
    if alternative == "greater":
        # b higher <=> a's share of the hits is low: P(X <= hits_a).
        tail = sum(math.exp(_log_hypergeom(x, n_a, n_b, hits)) for x in range(lo, hits_a + 1))
        return min(1.0, tail)
    if alternative != "two-sided":
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    observed = _log_hypergeom(hits_a, n_a, n_b, hits)
    limit = observed + math.log1p(_RELATIVE_TIE)
    total = 0.0
    for x in range(lo, hi + 1):
        log_p = _log_hypergeom(x, n_a, n_b, hits)
        if log_p <= limit:
            total += math.exp(log_p)
    return min(1.0, total)


def two_proportion_z(
    hits_a: int, n_a: int, hits_b: int, n_b: int, alternative: str = "two-sided"
) -> float:
    """p of the pooled two-proportion z test; "greater" means side b's rate is higher."""
    _check_counts(hits_a, n_a, hits_b, n_b)
    pooled = (hits_a + hits_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (hits_b / n_b - hits_a / n_a) / se
    if alternative == "greater":
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    if alternative != "two-sided":
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    return min(1.0, _normal_sf2(abs(z)))


def proportion_test(
    hits_a: int, n_a: int, hits_b: int, n_b: int, alternative: str = "two-sided"
) -> TestResult:
    """Fisher's exact test when a margin is small enough to sum, else the pooled z test."""
    _check_counts(hits_a, n_a, hits_b, n_b)
    hits = hits_a + hits_b
    smallest_margin = min(hits, n_a + n_b - hits, n_a, n_b)
    rate_change = hits_b / n_b - hits_a / n_a
    if smallest_margin <= EXACT_FISHER_MAX_MARGIN:
        p = fisher_exact(hits_a, n_a, hits_b, n_b, alternative)
        return TestResult(p, rate_change, "fisher exact")
    p = two_proportion_z(hits_a, n_a, hits_b, n_b, alternative)
    return TestResult(p, rate_change, "two-proportion z")


def _check_counts(hits_a: int, n_a: int, hits_b: int, n_b: int) -> None:
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both sides need at least one trial")
    if not (0 <= hits_a <= n_a and 0 <= hits_b <= n_b):
        raise ValueError("hits must lie between 0 and the number of trials")


# --- the two-sample quantile test -----------------------------------------------------
#
# Mood (1950), "Introduction to the Theory of Statistics", section 16.11 (the
# median test), extended to any quantile as in Conover (1999), section 4.3
# ("the median test ... can be used to test the equality of any quantile"):
# cut the pooled sample at its q-quantile; under H0 (same distribution) the number
# of side-a samples at or below the cut is hypergeometric given the pooled sample,
# so Fisher's test on the 2x2 table is exact (conservative with ties).


def pooled_cut(a: Buckets, b: Buckets, q: float) -> int:
    """The pooled sample's nearest-rank q-quantile (a bucket value)."""
    n = a.total + b.total
    rank = nearest_rank(q, n)
    seen = 0
    for value, count_a, count_b in _merged(a, b):
        seen += count_a + count_b
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the counts add up to the pooled total")


def at_or_below(buckets: Buckets, cut: float) -> int:
    """How many samples are <= cut."""
    return sum(c for v, c in zip(buckets.values, buckets.counts, strict=True) if v <= cut)


def quantile_test(a: Buckets, b: Buckets, q: float) -> TestResult:
    """Two-sided test that sides a and b share their q-quantile (pooled-cut quantile test).

    The statistic is side b's fraction at or below the cut minus side a's: negative
    when b's q-quantile is higher (b slower).
    """
    if a.total == 0 or b.total == 0:
        raise ValueError("the quantile test needs samples on both sides")
    cut = pooled_cut(a, b, q)
    result = proportion_test(at_or_below(a, cut), a.total, at_or_below(b, cut), b.total)
    return TestResult(result.p_value, result.statistic, f"quantile test ({result.method})")


# --- across runs ------------------------------------------------------------------------


def min_runs_per_side(alpha: float) -> int:
    """Fewest runs per side for which an exact two-sided Mann-Whitney test can reach alpha.

    With n runs per side the smallest attainable p is 2 / C(2n, n) (complete
    separation): 0.10 for 3 runs, 0.029 for 4, so at alpha = 0.05 across-run tests
    need 4 runs per side (benchstat warns below 4-6 samples for the same reason).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = 1
    while 2 / math.comb(2 * n, n) > alpha:
        n += 1
    return n


# --- run-to-run variance: a two-level (mixed) model of runs and samples ----------------
#
# A run of a release does not reproduce the release's true statistic: its samples
# scatter (sampling variance v, estimated inside the run, bench.analyse.stats), and
# the whole run sits higher or lower than another run of the same release, because
# the machine, its other processes, or a provider's other tenants differ between
# runs (the run effect, variance tau^2).  On a log scale, for run r of one side,
#     y_r = mu_side + b_r + e_r,   b_r ~ (0, tau^2),   e_r ~ (0, v_r),
# the random-effects model of meta-analysis (DerSimonian & Laird (1986), "Meta-
# analysis in clinical trials", Controlled Clinical Trials 7, 177-188) with runs in
# the place of studies.  A side of k runs estimates mu_side by the mean of its y_r,
# with variance tau^2 / k + sum(v_r) / k^2, and the change is tested with
#     T = (ybar_cand - ybar_base) / sqrt(Var_base + Var_cand)
# against Student's t with Satterthwaite's effective degrees of freedom (Satterthwaite
# (1946), "An approximate distribution of estimates of variance components",
# Biometrics Bulletin 2, 110-114; Welch's test is the special case without tau):
# each variance component counts with its own degrees of freedom (tau^2 with those
# of its estimate, a run's v with those of `bench.analyse.stats.sampling_df`).  With
# tau = 0 and one run per side it is the studentised difference of two sample
# statistics.
#
# tau^2 comes from the repeats when a side has several runs: the spread of the runs'
# y beyond their sampling variance (the moment estimator of DerSimonian & Laird),
# pooled over the levels of a ladder, moderated by a measured default as prior
# (Smyth (2004), "Linear models and empirical Bayes methods for assessing
# differential expression in microarray experiments", Stat. Appl. Genet. Mol. Biol.
# 3(1), article 3: s~^2 = (d0 s0^2 + d s^2) / (d0 + d) with d0 + d degrees of
# freedom), so a handful of repeats cannot talk the noise down to zero by luck.


def student_t_sf2(t: float, df: float) -> float:
    """Two-sided tail P(|T| >= |t|) of Student's t with df degrees of freedom (df may be inf).

    P(|T| >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2) (Abramowitz & Stegun 26.7.1 and
    26.5.27).
    """
    if df <= 0 or math.isnan(df):
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    t = abs(t)
    if math.isinf(df) or df > 1e7:
        return _normal_sf2(t)
    if t == 0:
        return 1.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


@dataclass(frozen=True)
class RunStatistic:
    """One run's statistic on a log scale, with its sampling variance and sample size."""

    log_value: float
    variance: float  # sampling variance of log_value, estimated inside the run
    df: float  # degrees of freedom of that variance estimate


@dataclass(frozen=True)
class RunEffects:
    """Run-to-run variance of one row kind: tau^2 (log scale) and its degrees of freedom."""

    tau2: float
    df: float  # math.inf: taken as known

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)


@dataclass(frozen=True)
class MixedTest(TestResult):
    """`statistic` is the log change; `sampling_p` the p-value with tau = 0 (runs as one)."""

    sampling_p: float = 1.0
    df: float = math.inf
    se: float = 0.0


def _side_variance(
    runs: Sequence[RunStatistic], tau2: float
) -> tuple[float, float, list[tuple[float, float]]]:
    """(mean log value, tau part of its variance, sampling components (variance, df))."""
    k = len(runs)
    mean_log = sum(r.log_value for r in runs) / k
    components = [(max(r.variance, BUCKET_LOG_VARIANCE) / (k * k), max(1.0, r.df)) for r in runs]
    return mean_log, tau2 / k, components


def _satterthwaite(components: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(sum of variance components, effective df) after Satterthwaite (1946)."""
    total = sum(v for v, _ in components)
    denominator = sum(v * v / df for v, df in components if v > 0 and not math.isinf(df))
    if total <= 0:
        return 0.0, math.inf
    return total, (total * total / denominator) if denominator > 0 else math.inf


def mixed_test(
    base: Sequence[RunStatistic], cand: Sequence[RunStatistic], effects: RunEffects
) -> MixedTest:
    """Two-sided test of a change in one statistic between two sets of runs (model above)."""
    if not base or not cand:
        raise ValueError("the mixed test needs at least one run per side")
    mean_b, tau_b, comps_b = _side_variance(base, effects.tau2)
    mean_c, tau_c, comps_c = _side_variance(cand, effects.tau2)
    change = mean_c - mean_b
    sampling = [*comps_b, *comps_c]
    components = [*sampling, (tau_b + tau_c, effects.df)]
    var, df = _satterthwaite(components)
    var_s, df_s = _satterthwaite(sampling)
    p = student_t_sf2(change / math.sqrt(var), df) if var > 0 else 1.0
    p_s = student_t_sf2(change / math.sqrt(var_s), df_s) if var_s > 0 else 1.0
    return MixedTest(p, change, "mixed model t", sampling_p=p_s, df=df, se=math.sqrt(var))


def run_effects_from_repeats(
    cells: Iterable[Sequence[RunStatistic]], independent_df: float
) -> RunEffects | None:
    """The moment estimate of tau^2 from groups of runs of one release (None: no group of 2+).

    Each cell is one side's runs at one level; its spread beyond the mean sampling
    variance estimates tau^2 (DerSimonian & Laird 1986), pooled over cells weighted
    by their degrees of freedom.  `independent_df` is the df to claim: the levels of one
    run share the run's mood, so a ladder's levels are not independent evidence about
    tau (the caller passes the sum over sides of runs - 1).
    """
    weighted = 0.0
    weight = 0
    for runs in cells:
        k = len(runs)
        if k < 2:
            continue
        mean_log = sum(r.log_value for r in runs) / k
        spread = sum((r.log_value - mean_log) ** 2 for r in runs) / (k - 1)
        sampling = sum(max(r.variance, BUCKET_LOG_VARIANCE) for r in runs) / k
        weighted += (k - 1) * (spread - sampling)
        weight += k - 1
    if weight == 0:
        return None
    return RunEffects(max(0.0, weighted / weight), independent_df)


def moderated(prior: RunEffects, data: RunEffects | None) -> RunEffects:
    """Smyth (2004)'s moderated variance: the prior and the data weighted by their df."""
    if data is None or data.df <= 0:
        return prior
    if math.isinf(prior.df):
        return prior
    df = prior.df + data.df
    return RunEffects((prior.df * prior.tau2 + data.df * data.tau2) / df, df)


# --- failure counts across runs: over-dispersion -------------------------------------
#
# Failures of one run are binomial; across runs the failure rate itself may move
# (a provider's bad hour).  With repeats, the dispersion factor phi = Pearson X^2 / df
# of the runs' counts around their side's pooled rate (McCullagh & Nelder,
# "Generalized Linear Models", 2nd ed. (1989), section 4.5.2) says how much wider
# than binomial the runs scatter; the counts are then divided by phi before the
# usual test (Rao & Scott (1992), "A simple method for the analysis of clustered
# binary data", Biometrics 48, 577-585).


def dispersion(groups: Iterable[Sequence[tuple[int, int]]]) -> tuple[float, int]:
    """(phi, df) from groups of (failures, decided) per run; phi = 1 with no repeats."""
    chi2 = 0.0
    df = 0
    for runs in groups:
        runs = [(f, d) for f, d in runs if d > 0]
        if len(runs) < 2:
            continue
        hits = sum(f for f, _ in runs)
        total = sum(d for _, d in runs)
        rate = hits / total
        if rate in (0.0, 1.0):
            df += len(runs) - 1
            continue
        chi2 += sum((f - d * rate) ** 2 / (d * rate * (1 - rate)) for f, d in runs)
        df += len(runs) - 1
    if df == 0:
        return 1.0, 0
    return max(1.0, chi2 / df), df


def min_attainable_p(
    hits_a: int, n_a: int, hits_b: int, n_b: int, alternative: str = "two-sided"
) -> float:
    """The smallest p `proportion_test` can give with these margins (for Tarone's rule)."""
    hits = hits_a + hits_b
    lo, hi = max(0, hits - n_b), min(hits, n_a)
    if alternative == "greater":
        return proportion_test(lo, n_a, hits - lo, n_b, "greater").p_value
    return min(proportion_test(x, n_a, hits - x, n_b).p_value for x in (lo, hi))


def tarone_selection(min_ps: Sequence[float], alpha: float) -> list[bool]:
    """Which tests can count in the family (Tarone 1990).

    Tarone (1990), "A modified Bonferroni method for discrete data", Biometrics 46,
    515-522: a discrete test whose smallest attainable p exceeds alpha / K can never be
    rejected in a family of K and need not be counted; K is the smallest integer with
    at most K tests whose smallest attainable p is <= alpha / K.  Holm's step-down then
    runs over the selected tests (Hommel & Krummenauer (1998), "Improvements and
    modifications of Tarone's multiple test procedure for discrete data", Biometrics 54,
    673-681).  A continuous test has smallest attainable p 0.
    """
    m = len(min_ps)
    for k in range(1, m + 1):
        chosen = [p <= alpha / k for p in min_ps]
        if sum(chosen) <= k:
            return chosen
    return [True] * m


# --- many rows ------------------------------------------------------------------------
#
# Holm (1979), "A simple sequentially rejective multiple test procedure", Scand. J.
# Statist. 6, 65-70: controls the family-wise error rate at alpha under any
# dependence between the tests (our rows are strongly dependent: p50/p90/p99 of
# one metric, `ready` containing `provisioning`), uniformly more powerful than
# Bonferroni.


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): reject a row when adjusted p <= alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


__all__ = [
    "EXACT_FISHER_MAX_MARGIN",
    "EXACT_MANN_WHITNEY_MAX_N",
    "MannWhitney",
    "MixedTest",
    "RunEffects",
    "RunStatistic",
    "TestResult",
    "at_or_below",
    "buckets_of",
    "dispersion",
    "fisher_exact",
    "holm",
    "mann_whitney",
    "min_attainable_p",
    "min_runs_per_side",
    "mixed_test",
    "moderated",
    "pooled_cut",
    "proportion_test",
    "quantile_test",
    "run_effects_from_repeats",
    "student_t_sf2",
    "tarone_selection",
    "two_proportion_z",
]
