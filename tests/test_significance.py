"""bench.analyse.significance: hand-checked cases, brute-force references, seed calibration."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from bench.analyse.significance import (
    EXACT_MANN_WHITNEY_MAX_N,
    RunEffects,
    RunStatistic,
    buckets_of,
    dispersion,
    fisher_exact,
    holm,
    mann_whitney,
    min_attainable_p,
    min_runs_per_side,
    mixed_test,
    moderated,
    pooled_cut,
    proportion_test,
    quantile_test,
    run_effects_from_repeats,
    student_t_sf2,
    tarone_selection,
    two_proportion_z,
)
from bench.analyse.stats import (
    BUCKET_LOG_VARIANCE,
    Buckets,
    betainc,
    log_mean_variance,
    log_quantile_variance,
    mean,
    quantile,
    sampling_df,
)
from bench.present.compare.synthetic import ready_times

# --- Mann-Whitney U ---------------------------------------------------------------------


def midranks(values: list[float]) -> list[float]:
    """Textbook midranks, written independently of the bucket walk under test."""
    order = sorted(values)
    return [
        (order.index(v) + 1 + len(order) - order[::-1].index(v)) / 2.0 for v in values
    ]


def brute_force_mw(a: list[float], b: list[float]) -> tuple[float, float]:
    """U of a and the exact two-sided p by enumerating every split of the pooled sample."""
    pooled = a + b
    ranks = midranks(pooled)
    n_a = len(a)
    offset = n_a * (n_a + 1) / 2
    u = sum(ranks[:n_a]) - offset
    centre = n_a * len(b) / 2
    splits = list(itertools.combinations(range(len(pooled)), n_a))
    observed = abs(u - centre) - 1e-9
    extreme = sum(1 for s in splits if abs(sum(ranks[i] for i in s) - offset - centre) >= observed)
    return u, extreme / len(splits)


def test_mann_whitney_hand_computed_with_ties():
    # Pooled: 1 | 2 2 2 | 3 | 4 4 | 5 | 6 7 8.  Midranks of a = 1, 3, 3, 5, 8 -> R = 20,
    # U = 20 - 5*6/2 = 5.  Tie groups of 3 and 2.
    a, b = [1, 2, 2, 3, 5], [2, 4, 4, 6, 7, 8]
    result = mann_whitney(buckets_of(a), buckets_of(b))
    assert result.statistic == 5.0
    assert result.effect == pytest.approx(5 / 30)
    assert result.method == "mann-whitney exact"
    # 32 of the C(11, 5) = 462 splits are at least as far from U = 15 (enumerated below).
    assert result.p_value == pytest.approx(32 / 462)
    assert (result.statistic, result.p_value) == pytest.approx(brute_force_mw(a, b))


@pytest.mark.parametrize("seed", range(12))
def test_mann_whitney_exact_matches_brute_force_on_small_tied_samples(seed):
    rng = random.Random(seed)
    n_a, n_b = rng.randint(1, 7), rng.randint(1, 7)
    a = [rng.randint(1, 5) for _ in range(n_a)]  # few values: many ties
    b = [rng.randint(1, 6) for _ in range(n_b)]
    result = mann_whitney(buckets_of(a), buckets_of(b))
    u, p = brute_force_mw(a, b)
    assert result.statistic == pytest.approx(u)
    assert result.p_value == pytest.approx(p)


def test_mann_whitney_normal_approximation_against_hand_formula():
    # 20 + 20 samples with ties, beyond the exact limit: check z by hand.
    a = [1] * 5 + [2] * 5 + [3] * 10
    b = [2] * 5 + [3] * 5 + [4] * 10
    assert len(a) + len(b) > EXACT_MANN_WHITNEY_MAX_N
    result = mann_whitney(buckets_of(a), buckets_of(b))
    # Pooled: 1 x5 (midrank 3), 2 x10 (10.5), 3 x15 (23), 4 x10 (35.5).
    r_a = 5 * 3 + 5 * 10.5 + 10 * 23
    u = r_a - 20 * 21 / 2
    ties = sum(t**3 - t for t in (5, 10, 15, 10))
    var = 20 * 20 / 12 * (41 - ties / (40 * 39))
    z = (abs(u - 200) - 0.5) / math.sqrt(var)
    assert result.statistic == u
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert result.method == "mann-whitney normal"


def test_mann_whitney_all_tied_is_not_significant():
    result = mann_whitney(buckets_of([7] * 40), buckets_of([7] * 30))
    assert result.p_value == 1.0


def test_mann_whitney_needs_both_sides():
    with pytest.raises(ValueError):
        mann_whitney(buckets_of([]), buckets_of([1]))


# --- proportions --------------------------------------------------------------------------


def test_fisher_exact_against_published_values():
    # R: fisher.test(matrix(c(1, 9, 7, 3), 2))$p.value = 0.01977; the table is symmetric
    # in its margins, so swapping the sides gives the same p.
    assert fisher_exact(1, 10, 7, 10) == pytest.approx(0.019766, abs=1e-6)
    assert fisher_exact(7, 10, 1, 10) == pytest.approx(0.019766, abs=1e-6)
    # Fisher's tea tasting: 3 of 4 right, one-sided p = 17/70.
    assert fisher_exact(1, 4, 3, 4, alternative="greater") == pytest.approx(17 / 70)
    assert fisher_exact(3, 10, 3, 10) == pytest.approx(1.0)


def test_new_failure_mode_one_sided():
    # 0 of 1000 vs 10 of 1000: P(all 10 land in the candidate) = C(1000,10)/C(2000,10).
    expected = math.comb(1000, 10) / math.comb(2000, 10)
    assert fisher_exact(0, 1000, 10, 1000, alternative="greater") == pytest.approx(expected)
    assert proportion_test(0, 1000, 10, 1000, alternative="greater").p_value < 0.01
    assert proportion_test(0, 1000, 1, 1000, alternative="greater").p_value == pytest.approx(0.5)


def test_two_proportion_z_by_hand():
    # 50/1000 vs 80/1000: pooled 0.065, se = sqrt(.065*.935*2/1000).
    z = 0.03 / math.sqrt(0.065 * 0.935 * 2 / 1000)
    assert two_proportion_z(50, 1000, 80, 1000) == pytest.approx(math.erfc(z / math.sqrt(2)))
    big = proportion_test(5000, 100_000, 5600, 100_000)
    assert big.method == "two-proportion z"
    assert big.p_value < 1e-6


def test_bad_counts_are_refused():
    with pytest.raises(ValueError):
        fisher_exact(5, 4, 0, 4)
    with pytest.raises(ValueError):
        two_proportion_z(0, 0, 0, 4)


# --- quantile test ------------------------------------------------------------------------


def test_pooled_cut_is_the_pooled_nearest_rank_quantile():
    a, b = buckets_of([1, 2, 3, 4]), buckets_of([5, 6, 7, 8, 9, 10])
    assert pooled_cut(a, b, 0.5) == 5
    assert pooled_cut(a, b, 0.9) == 9
    assert pooled_cut(a, b, 1.0) == 10


def lognormal(rng: random.Random, n: int, scale: float = 1.0, tail: float = 1.0) -> Buckets:
    """Shifted lognormal like the default profile's ready time, rounded to 3 digits (HDR-ish).

    `tail` stretches only the values above the median: the p99 moves, the median does not.
    """
    values = []
    for x in ready_times(rng, n, scale, tail):
        digits = 10 ** max(0, int(math.log10(x)) - 2)
        values.append(round(x / digits) * digits)
    return buckets_of(values)


def test_tail_only_p99_shift_is_found_by_the_quantile_test_not_by_mann_whitney():
    rng = random.Random(7)
    base = lognormal(rng, 4000)
    # +20 % at p99 (the part above the median stretched x1.8), median unchanged.
    cand = lognormal(rng, 4000, tail=1.8)

    assert quantile(cand, 0.99) / quantile(base, 0.99) == pytest.approx(1.2, abs=0.05)
    assert quantile_test(base, cand, 0.99).p_value < 1e-6
    assert quantile_test(base, cand, 0.5).p_value > 0.01
    # Mann-Whitney sees a shift too (half the distribution moved), but far less clearly.
    assert mann_whitney(base, cand).p_value > quantile_test(base, cand, 0.99).p_value


def test_false_positive_rate_over_seeds_is_near_alpha():
    """Same distribution twice, 300 seeds: rejections at alpha must look like Binomial(300, a).

    The quantile test is conservative (Fisher, discrete), so allow anything from 0 up
    to alpha + 3 binomial standard deviations; Mann-Whitney should sit near alpha.
    """
    alpha, seeds, n = 0.05, 300, 400
    sd = math.sqrt(alpha * (1 - alpha) / seeds)
    hits = {"mw": 0, "p50": 0, "p99": 0}
    for seed in range(seeds):
        rng = random.Random(seed)
        a, b = lognormal(rng, n), lognormal(rng, n)
        hits["mw"] += mann_whitney(a, b).p_value <= alpha
        hits["p50"] += quantile_test(a, b, 0.5).p_value <= alpha
        hits["p99"] += quantile_test(a, b, 0.99).p_value <= alpha
    rates = {k: v / seeds for k, v in hits.items()}
    assert all(rate <= alpha + 3 * sd for rate in rates.values()), rates
    assert abs(rates["mw"] - alpha) <= 3 * sd, rates
    # Not so conservative that it never fires (a test that cannot fail is no test).
    assert rates["p50"] >= alpha - 3 * sd, rates


# --- Holm and run counts --------------------------------------------------------------------


def test_holm_by_hand():
    # Sorted p: .01 (x4 = .04), .03 (x3 = .09), .04 (x2 = .08 -> monotone .09), .5 (x1).
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
    assert holm([0.9, 0.9]) == [1.0, 1.0]


def test_min_runs_per_side():
    assert min_runs_per_side(0.05) == 4  # 2 / C(8, 4) = 0.029; 2 / C(6, 3) = 0.1
    assert min_runs_per_side(0.1) == 3
    assert min_runs_per_side(0.01) == 5  # 2 / C(10, 5) = 0.0079
    # And the exact test really reaches it with 4 + 4 separated runs.
    p = mann_whitney(buckets_of([1, 2, 3, 4]), buckets_of([5, 6, 7, 8])).p_value
    assert p == pytest.approx(2 / 70)


# --- the incomplete beta function and Student's t ---------------------------------------------


def binomial_tail(n: int, x: float, k: int) -> float:
    """P(Binomial(n, x) >= k), written out: I_x(k, n - k + 1) equals it exactly."""
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize(("a", "b", "x"), [(2, 3, 0.4), (3, 4, 0.2), (1, 1, 0.37), (7, 2, 0.9),
                                            (40, 61, 0.41)])
def test_betainc_equals_the_binomial_tail(a, b, x):
    assert betainc(a, b, x) == pytest.approx(binomial_tail(a + b - 1, x, a), rel=1e-10)


def test_betainc_closed_forms_and_edges():
    assert betainc(0.5, 0.5, 0.3) == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.3)))
    assert betainc(4.5, 4.5, 0.5) == pytest.approx(0.5)
    assert (betainc(2, 3, 0.0), betainc(2, 3, 1.0)) == (0.0, 1.0)
    with pytest.raises(ValueError):
        betainc(0, 1, 0.5)


@pytest.mark.parametrize(
    ("t", "df", "p"),
    # Two-sided critical values from standard t tables (e.g. Fisher & Yates, Table III).
    [(12.706, 1, 0.05), (2.228, 10, 0.05), (4.032, 5, 0.01), (2.042, 30, 0.05),
     (1.960, math.inf, 0.05), (3.291, math.inf, 0.001)],
)
def test_student_t_against_published_critical_values(t, df, p):
    assert student_t_sf2(t, df) == pytest.approx(p, rel=2e-3)
    assert student_t_sf2(-t, df) == student_t_sf2(t, df)
    assert student_t_sf2(0.0, df) == 1.0


# --- a run's statistic on a log scale -----------------------------------------------------------


def test_maritz_jarrett_weights_by_hand():
    # n = 6, the median is X(3): U(3) ~ Beta(3, 4), P(U(3) <= x) = P(Bin(6, x) >= 3).
    values = [100, 200, 300, 400, 500, 600]
    cdf = [binomial_tail(6, i / 6, 3) for i in range(7)]
    weights = [cdf[i] - cdf[i - 1] for i in range(1, 7)]
    logs = [math.log(v) for v in values]
    centre = sum(w * y for w, y in zip(weights, logs, strict=True))
    expected = sum(w * (y - centre) ** 2 for w, y in zip(weights, logs, strict=True))
    got = log_quantile_variance(buckets_of(values), 0.5)
    assert got == pytest.approx(expected + BUCKET_LOG_VARIANCE, rel=1e-9)


def test_a_statistic_without_its_interval_has_no_variance():
    # p99 needs 368 samples for a distribution-free 95 % interval, the median 6.
    assert log_quantile_variance(buckets_of(range(1, 368)), 0.99) is None
    assert log_quantile_variance(buckets_of(range(1, 369)), 0.99) is not None
    assert log_quantile_variance(buckets_of(range(1, 6)), 0.5) is None
    assert log_mean_variance(buckets_of(range(1, 6))) is None


def test_log_mean_variance_is_the_delta_method():
    values = [90, 100, 110, 120, 80, 100]
    mu = sum(values) / 6
    s2 = sum((v - mu) ** 2 for v in values) / 5
    got = log_mean_variance(buckets_of(values))
    assert got == pytest.approx(s2 / 6 / mu**2 + BUCKET_LOG_VARIANCE)
    assert sampling_df(6, None) == 5
    assert sampling_df(100, 0.5) == pytest.approx(3.92 * 5)


# --- the mixed model of runs and samples ------------------------------------------------------


def test_mixed_test_one_run_each_by_hand():
    base, cand = RunStatistic(0.0, 0.01, math.inf), RunStatistic(0.3, 0.03, math.inf)
    result = mixed_test([base], [cand], RunEffects(0.02, math.inf))
    z = 0.3 / math.sqrt(0.01 + 0.03 + 2 * 0.02)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert result.sampling_p == pytest.approx(math.erfc(0.3 / math.sqrt(0.04) / math.sqrt(2)))


def test_mixed_test_satterthwaite_degrees_of_freedom_by_hand():
    base = [RunStatistic(0.0, 0.01, 9.0), RunStatistic(0.1, 0.01, 9.0)]
    cand = [RunStatistic(0.4, 0.02, 19.0)]
    effects = RunEffects(0.03, 4.0)
    result = mixed_test(base, cand, effects)
    parts = [(0.01 / 4, 9.0), (0.01 / 4, 9.0), (0.02, 19.0), (0.03 * (1 / 2 + 1), 4.0)]
    var = sum(v for v, _ in parts)
    df = var**2 / sum(v * v / d for v, d in parts)
    assert result.df == pytest.approx(df)
    assert result.statistic == pytest.approx(0.35)
    assert result.p_value == pytest.approx(student_t_sf2(0.35 / math.sqrt(var), df))


def lognormal_run(rng: random.Random, n: int, run_effect: float) -> Buckets:
    return buckets_of(round(1e6 * math.exp(run_effect + 0.3 * rng.gauss(0, 1))) for _ in range(n))


def stat(buckets: Buckets, q: float | None) -> RunStatistic:
    value = mean(buckets) if q is None else quantile(buckets, q)
    variance = log_mean_variance(buckets) if q is None else log_quantile_variance(buckets, q)
    assert value is not None and variance is not None
    return RunStatistic(math.log(value), variance, sampling_df(buckets.total, q))


@pytest.mark.parametrize(("n", "q"), [(23, 0.5), (44, 0.9), (44, None), (400, 0.99)])
def test_mixed_test_false_positive_rate_over_seeds(n, q):
    """Same distribution, one run a side, 400 seeds: at most alpha + 3 binomial sd."""
    alpha, seeds = 0.05, 400
    sd = math.sqrt(alpha * (1 - alpha) / seeds)
    rng = random.Random(n)
    hits = sum(
        mixed_test([stat(lognormal_run(rng, n, 0.0), q)], [stat(lognormal_run(rng, n, 0.0), q)],
                   RunEffects(0.0, math.inf)).p_value <= alpha
        for _ in range(seeds)
    )
    assert hits / seeds <= alpha + 3 * sd
    assert hits / seeds >= alpha - 3 * sd - 0.02  # not a test that can never fire


def test_run_effects_make_a_sampling_only_test_cry_wolf_and_tau_fixes_it():
    """Runs of one release differ by a run effect (sd 0.1 on the log scale) on top of
    their samples' scatter: a test blind to it rejects far above alpha; given tau it does not."""
    alpha, seeds, tau = 0.05, 300, 0.1
    sd = math.sqrt(alpha * (1 - alpha) / seeds)
    rng = random.Random(11)
    blind = aware = 0
    for _ in range(seeds):
        a = stat(lognormal_run(rng, 200, rng.gauss(0, tau)), 0.5)
        b = stat(lognormal_run(rng, 200, rng.gauss(0, tau)), 0.5)
        result = mixed_test([a], [b], RunEffects(tau * tau, math.inf))
        blind += result.sampling_p <= alpha
        aware += result.p_value <= alpha
    assert aware / seeds <= alpha + 3 * sd
    assert blind / seeds > 0.3


def test_run_effects_from_repeats_by_hand():
    cell_a = [RunStatistic(y, 0.001, 10) for y in (0.0, 0.2, 0.1)]
    cell_b = [RunStatistic(1.0, 0.002, 10), RunStatistic(1.1, 0.002, 10)]
    got = run_effects_from_repeats([cell_a, cell_b, cell_b[:1]], independent_df=3)
    s_a = (0.01 + 0.01 + 0.0) / 2  # variance of 0, .2, .1
    s_b = 0.005  # variance of 1.0, 1.1
    expected = (2 * (s_a - 0.001) + 1 * (s_b - 0.002)) / 3
    assert got == RunEffects(pytest.approx(expected), 3)
    assert run_effects_from_repeats([cell_b[:1]], 0) is None
    # The spread can be below the sampling variance alone: tau is then 0, never negative.
    tight = [RunStatistic(0.0, 0.5, 10), RunStatistic(0.01, 0.5, 10)]
    assert run_effects_from_repeats([tight], 1).tau2 == 0.0


def test_moderated_variance_by_hand():
    prior, data = RunEffects(0.04, 20.0), RunEffects(0.01, 4.0)
    assert moderated(prior, data) == RunEffects(pytest.approx((20 * 0.04 + 4 * 0.01) / 24), 24.0)
    assert moderated(prior, None) == prior


# --- failure counts across runs, and rows that cannot speak ---------------------------------------


def test_dispersion_is_pearson_chi_square_over_df():
    runs = [(2, 100), (10, 100), (6, 100)]  # pooled rate .06
    chi2 = sum((f - 6) ** 2 / (100 * 0.06 * 0.94) for f, _ in runs)
    assert dispersion([runs]) == (pytest.approx(chi2 / 2), 2)
    assert dispersion([[(6, 100), (6, 100)]]) == (1.0, 1)  # never below binomial
    assert dispersion([[(1, 10)]]) == (1.0, 0)


def test_min_attainable_p_and_tarone():
    # One failure among 20 journeys can never be significant: both tables give p = 1.
    assert min_attainable_p(1, 10, 0, 10) == 1.0
    assert min_attainable_p(0, 10, 10, 10) == pytest.approx(fisher_exact(0, 10, 10, 10))
    # Tarone: K = 2 is the first K with at most K tests whose smallest p <= alpha / K.
    assert tarone_selection([0.0, 0.0, 0.03, 0.2], 0.05) == [True, True, False, False]
    assert tarone_selection([0.0, 0.01, 0.01], 0.05) == [True, True, True]
    assert tarone_selection([], 0.05) == []
