"""Verdict logic: matched levels -> rows (values, CIs, delta, p) -> Holm -> verdicts (pure).

Nothing here reads files: it takes loaded `Results` and returns a `Comparison`.
How each row is tested (docs/compare.md has the reasoning and sources):

* latency rows (mean, p50, p90, p99 of a metric at one level, and over all levels):
  each run gives the statistic on a log scale with its sampling variance estimated
  inside the run (bench.analyse.stats); runs of one release also differ by a run
  effect of variance tau^2, estimated from the repeats when a side has any and
  taken from a measured prior otherwise (bench.present.compare.noise); the change
  is tested with the mixed-model t test of bench.analyse.significance.  A row whose
  statistic cannot be estimated in some run (too few samples around it) is "too few
  samples" and stays out of the family.
* failure rate: two-proportion test (Fisher's exact for small counts), counts scaled
  down by the runs' over-dispersion when there are repeats; a new failure mode is a
  one-sided test of zero in the baseline against the candidate.  A count row whose
  smallest attainable p can never pass is left out (Tarone 1990).

All tested p-values of one comparison form one Holm family, so the chance that a
comparison of two releases that differ only by run-to-run noise reports any
regression is at most alpha, as far as the noise model holds (the calibration in
docs/compare.md measures that on real runs).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.analyse.capacity import capacity_at_slo
from bench.analyse.significance import (
    RunEffects,
    RunStatistic,
    dispersion,
    holm,
    min_attainable_p,
    mixed_test,
    moderated,
    proportion_test,
    run_effects_from_repeats,
    student_t_sf2,
    tarone_selection,
)
from bench.analyse.stats import (
    Buckets,
    log_mean_variance,
    log_quantile_variance,
    mean,
    quantile,
    quantile_interval,
    sampling_df,
)
from bench.core import exitcodes
from bench.core.journey import METRICS
from bench.core.outcomes import FAILURE_OUTCOMES, failure_counts
from bench.present.compare.inputs import Side, match_levels, steps_by_level
from bench.present.compare.limits import QUANTILES, STATISTICS, Thresholds

WORSE = "worse"
BETTER = "better"
UNCHANGED = "unchanged"
NOT_SIGNIFICANT = "~"
WITHIN_NOISE = "within run-to-run noise"
TOO_FEW = "too few samples"
NOT_COMPARABLE = "not comparable"
NEW_FAILURE_MODE = "new failure mode"
VERDICTS = (
    WORSE, NEW_FAILURE_MODE, BETTER, WITHIN_NOISE, NOT_SIGNIFICANT, TOO_FEW, NOT_COMPARABLE,
    UNCHANGED,
)
REGRESSIONS = frozenset({WORSE, NEW_FAILURE_MODE})

FAILURE_RATE = "failure rate"
ALL_LEVELS = None  # a row about every matched level together

_Z95 = 1.959963984540054  # standard normal 97.5 % point

# Rows in the order a reader asks: end to end first, then where the time goes.
METRIC_ORDER: tuple[str, ...] = (
    "ready", "ready_seen", "queued", "provisioning", "configuring", "create", "poll", "release",
)


@dataclass(frozen=True)
class Row:
    """One line of the comparison."""

    concurrency: float | None  # the level (concurrency or arrival rate); None: all levels
    metric: str  # a latency metric, "failure rate" or "outcome:NAME"
    statistic: str  # mean, p50, p90, p99, rate, count, or "" for a whole level
    unit: str  # "us", "fraction" or "count"
    baseline: float | None = None
    baseline_ci: tuple[float, float] | None = None
    candidate: float | None = None
    candidate_ci: tuple[float, float] | None = None
    n_baseline: int = 0
    n_candidate: int = 0
    delta: float | None = None  # relative for "us", absolute for "fraction"/"count"
    p_value: float | None = None  # None: not tested (missing, or too few samples)
    adjusted_p: float | None = None  # Holm over the comparison's family
    method: str = ""
    threshold: float | None = None
    verdict: str = NOT_COMPARABLE
    note: str = ""
    # The same test with the run-to-run noise left out (runs as if they were one):
    # what a comparison blind to that noise would have said, for the noise verdict.
    sampling_p: float | None = None
    adjusted_sampling_p: float | None = None
    noise: float | None = None  # tau assumed for this row (log-scale sd of a run)
    too_few: bool = False  # the data cannot speak: kept out of the family
    min_p: float = 0.0  # smallest p the row's test could ever give (Tarone)


@dataclass(frozen=True)
class SideSummary:
    name: str
    source: str
    releases: tuple[str, ...]
    run_ids: tuple[str, ...]
    journeys: int
    capacity: tuple[int | None, ...]  # capacity at SLO per run

    @property
    def label(self) -> str:
        return ", ".join(self.releases)


@dataclass(frozen=True)
class NoiseUsed:
    """The run-to-run noise one row kind was tested with, and where it came from."""

    metric: str
    statistic: str
    tau: float
    df: float
    prior_tau: float
    repeats_tau: float | None  # estimated from this comparison's repeats (None: none)
    repeats_df: float


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing a candidate with a baseline."""

    baseline: SideSummary
    candidate: SideSummary
    rows: tuple[Row, ...]
    thresholds: Thresholds
    mode: str  # "samples" (one run per side) or "runs" (repeats on a side)
    notes: tuple[str, ...] = ()
    noise: tuple[NoiseUsed, ...] = ()
    dispersion: float = 1.0  # failure counts' over-dispersion from repeats (1: binomial)
    # (level, metric) -> pooled (baseline, candidate) buckets, for distribution plots
    distributions: Mapping[tuple[int, str], tuple[Buckets | None, Buckets | None]] = field(
        default_factory=dict, repr=False
    )

    @property
    def family_size(self) -> int:
        return sum(1 for r in self.rows if r.adjusted_p is not None)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict in REGRESSIONS]

    @property
    def regression(self) -> bool:
        return bool(self.regressions)

    @property
    def exit_code(self) -> int:
        return exitcodes.REGRESSION if self.regression else exitcodes.OK

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.verdict for r in self.rows)


# --- per-level data -------------------------------------------------------------------


def merge_buckets(parts: Sequence[Buckets]) -> Buckets:
    """Several histograms' buckets as one (values are bucket tops, so they line up)."""
    total: Counter[int] = Counter()
    for part in parts:
        for value, count in zip(part.values, part.counts, strict=True):
            total[value] += count
    return buckets_of_counts(total)


def buckets_of_counts(counts: Mapping[int, int]) -> Buckets:
    items = sorted((v, c) for v, c in counts.items() if c)
    return Buckets(tuple(v for v, _ in items), tuple(c for _, c in items), sum(c for _, c in items))


@dataclass(frozen=True)
class LevelData:
    """One side at one target concurrency: buckets per metric per run, outcome counts."""

    per_run: Mapping[str, tuple[Buckets, ...]]  # metric -> one Buckets per run
    outcomes: Mapping[str, int]  # summed over runs (measured part)
    outcomes_per_run: tuple[Mapping[str, int], ...] = ()

    def pooled(self, metric: str) -> Buckets | None:
        runs = self.per_run.get(metric)
        return merge_buckets(runs) if runs else None


def level_data(side: Side, level: int) -> LevelData:
    per_run: dict[str, list[Buckets]] = {}
    outcomes: Counter[str] = Counter()
    each: list[Mapping[str, int]] = []
    for run in side.runs:
        steps = steps_by_level(run)[level]
        by_metric: dict[str, list[Buckets]] = {}
        mine: Counter[str] = Counter()
        for step in steps:
            mine.update(step["measured"]["outcomes"])
            for metric in step["measured"]["histograms"]:
                hist = run.histogram(step["index"], metric)
                if hist is not None:
                    by_metric.setdefault(metric, []).append(Buckets.of(hist))
        for metric, parts in by_metric.items():
            merged = parts[0] if len(parts) == 1 else merge_buckets(parts)
            per_run.setdefault(metric, []).append(merged)
        outcomes.update(mine)
        each.append(dict(mine))
    return LevelData({m: tuple(v) for m, v in per_run.items()}, dict(outcomes), tuple(each))


# --- statistics of one sample -----------------------------------------------------------


def _q(statistic: str) -> float | None:
    return None if statistic == "mean" else QUANTILES[statistic]


def statistic_value(buckets: Buckets, statistic: str) -> float | None:
    if buckets.total == 0:
        return None
    if statistic == "mean":
        return mean(buckets)
    value = quantile(buckets, QUANTILES[statistic])
    return None if value is None else float(value)


def statistic_interval(buckets: Buckets, statistic: str) -> tuple[float, float] | None:
    """95 % CI: order statistics for a percentile (distribution-free); CLT for the mean."""
    if statistic != "mean":
        ci = quantile_interval(buckets, QUANTILES[statistic])
        return None if ci is None else (float(ci[0]), float(ci[1]))
    n = buckets.total
    if n < 2:
        return None
    mu = mean(buckets)
    assert mu is not None  # n >= 2
    var = sum(c * (v - mu) ** 2 for v, c in zip(buckets.values, buckets.counts, strict=True))
    half = _Z95 * math.sqrt(var / (n - 1) / n)
    return (mu - half, mu + half)


def run_statistic(buckets: Buckets, statistic: str) -> RunStatistic | None:
    """One run's statistic on a log scale with its sampling variance; None: too few samples."""
    q = _q(statistic)
    variance = log_mean_variance(buckets) if q is None else log_quantile_variance(buckets, q)
    value = statistic_value(buckets, statistic)
    if variance is None or value is None:
        return None
    return RunStatistic(math.log(max(value, 1.0)), variance, sampling_df(buckets.total, q))


def _t_quantile(df: float, p_two_sided: float = 0.05) -> float:
    """Student's t two-sided critical value, by bisection on the tail (df may be inf)."""
    low, high = 0.0, 1e3
    for _ in range(100):
        mid = (low + high) / 2
        if student_t_sf2(mid, df) > p_two_sided:
            low = mid
        else:
            high = mid
    return high


# --- latency rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """One statistic of one metric at one level: both sides' runs, estimable or not."""

    base: tuple[Buckets, ...]
    cand: tuple[Buckets, ...]
    base_stats: tuple[RunStatistic, ...] | None
    cand_stats: tuple[RunStatistic, ...] | None

    @property
    def estimable(self) -> bool:
        return self.base_stats is not None and self.cand_stats is not None


def _cell(base: LevelData, cand: LevelData, metric: str, statistic: str) -> _Cell:
    b, c = base.per_run.get(metric, ()), cand.per_run.get(metric, ())

    def stats(runs: Sequence[Buckets]) -> tuple[RunStatistic, ...] | None:
        found = [run_statistic(r, statistic) for r in runs]
        if not found or any(s is None for s in found):
            return None
        return tuple(s for s in found if s is not None)

    return _Cell(b, c, stats(b), stats(c))


def _side_shown(
    runs: Sequence[Buckets], stats: Sequence[RunStatistic] | None, statistic: str,
    effects: RunEffects,
) -> tuple[float | None, tuple[float, float] | None]:
    """The value and 95 % interval a side shows: one run's own, or the runs' mean."""
    if len(runs) == 1:
        return statistic_value(runs[0], statistic), statistic_interval(runs[0], statistic)
    if stats is None:
        values = [statistic_value(r, statistic) for r in runs]
        logs = [math.log(max(v, 1.0)) for v in values if v is not None]
        return (math.exp(sum(logs) / len(logs)) if logs else None), None
    k = len(stats)
    centre = sum(s.log_value for s in stats) / k
    sampling = sum(s.variance for s in stats) / (k * k)
    se = math.sqrt(effects.tau2 / k + sampling)
    half = _t_quantile(effects.df) * se
    return math.exp(centre), (math.exp(centre - half), math.exp(centre + half))


def _latency_row(
    level: int | None, metric: str, statistic: str, cells: Sequence[_Cell],
    effects: RunEffects, threshold: float,
) -> Row:
    """A row for one level (one cell) or for all levels (several cells combined)."""
    b_pooled = merge_buckets([r for cell in cells for r in cell.base]) if cells else None
    c_pooled = merge_buckets([r for cell in cells for r in cell.cand]) if cells else None
    n_b = b_pooled.total if b_pooled else 0
    n_c = c_pooled.total if c_pooled else 0
    common: dict[str, Any] = {
        "concurrency": level, "metric": metric, "statistic": statistic, "unit": "us",
        "n_baseline": n_b, "n_candidate": n_c, "threshold": threshold, "noise": effects.tau,
    }
    if not n_b or not n_c:
        missing = "baseline" if not n_b else "candidate"
        return Row(**common, note=f"no {metric} samples in the {missing}")
    usable = [cell for cell in cells if cell.estimable]
    if level is not ALL_LEVELS:
        (cell,) = cells
        b_value, b_ci = _side_shown(cell.base, cell.base_stats, statistic, effects)
        c_value, c_ci = _side_shown(cell.cand, cell.cand_stats, statistic, effects)
        shown: dict[str, Any] = {
            "baseline": b_value, "baseline_ci": b_ci, "candidate": c_value, "candidate_ci": c_ci,
        }
    else:
        shown = {"baseline": statistic_value(b_pooled, statistic),  # type: ignore[arg-type]
                 "candidate": statistic_value(c_pooled, statistic)}  # type: ignore[arg-type]
    if not usable:
        delta = _relative(shown["baseline"], shown["candidate"])
        q = _q(statistic)
        need = "its 95 % interval" if q is None or q < 0.99 else "its 95 % interval (368 for p99)"
        return Row(**common, **shown, delta=delta, too_few=True,
                   note=f"too few samples in a run for {need}: not tested")
    if level is not ALL_LEVELS:
        test = mixed_test(usable[0].base_stats, usable[0].cand_stats, effects)  # type: ignore[arg-type]
        change, p, p_s = test.statistic, test.p_value, test.sampling_p
        method = f"{test.method} (df {test.df:.0f})"
    else:
        change, p, p_s, method = _across_levels(usable, effects)
    return Row(**common, **shown, delta=math.expm1(change), p_value=p, sampling_p=p_s,
               method=method)


def _across_levels(cells: Sequence[_Cell], effects: RunEffects) -> tuple[float, float, float, str]:
    """Inverse-variance mean of the levels' log changes, tested like one level.

    Each level's change carries its own sampling variance and the one run effect the
    levels share (a run is slow or fast as a whole): the shared part is not averaged
    away, so tau^2 enters once, not divided by the number of levels (conservative if
    the levels' run effects are less than fully correlated).
    """
    changes, sampling = [], []
    for cell in cells:
        t0 = mixed_test(cell.base_stats, cell.cand_stats, RunEffects(0.0, math.inf))  # type: ignore[arg-type]
        changes.append(t0.statistic)
        sampling.append((t0.se**2, t0.df))
    weights = [1.0 / v for v, _ in sampling]
    total = sum(weights)
    change = sum(w * c for w, c in zip(weights, changes, strict=True)) / total
    components = [((w / total) ** 2 * v, df) for w, (v, df) in zip(weights, sampling, strict=True)]
    k_b = len(cells[0].base_stats or ())
    k_c = len(cells[0].cand_stats or ())
    run_part = (effects.tau2 * (1 / k_b + 1 / k_c), effects.df)

    def p_of(parts: Sequence[tuple[float, float]]) -> tuple[float, float]:
        var = sum(v for v, _ in parts)
        den = sum(v * v / df for v, df in parts if v > 0 and not math.isinf(df))
        df = var * var / den if den > 0 else math.inf
        return (student_t_sf2(change / math.sqrt(var), df) if var > 0 else 1.0), df

    p, df = p_of([*components, run_part])
    p_s, _ = p_of(components)
    return change, p, p_s, f"mixed model t over {len(cells)} levels (df {df:.0f})"


def _relative(base: float | None, cand: float | None) -> float | None:
    if base is None or cand is None or base <= 0:
        return None
    return (cand - base) / base


def _run_effects(
    cells: Sequence[_Cell], prior: RunEffects, runs_b: int, runs_c: int
) -> tuple[RunEffects, RunEffects | None]:
    """tau for one metric and statistic: the repeats' estimate moderated by the prior."""
    groups = []
    for cell in cells:
        for stats in (cell.base_stats, cell.cand_stats):
            if stats is not None and len(stats) >= 2:
                groups.append(stats)
    independent = max(0, runs_b - 1) + max(0, runs_c - 1)
    data = run_effects_from_repeats(groups, independent) if independent else None
    return moderated(prior, data), data


# --- failure rows -----------------------------------------------------------------------


def _failure_rows(
    level: int | None, base_outcomes: Mapping[str, int], cand_outcomes: Mapping[str, int],
    thresholds: Thresholds, phi: float,
) -> list[Row]:
    f_b, d_b = failure_counts(base_outcomes)
    f_c, d_c = failure_counts(cand_outcomes)
    common: dict[str, Any] = {"concurrency": level, "n_baseline": d_b, "n_candidate": d_c}
    if not d_b or not d_c:
        missing = "baseline" if not d_b else "candidate"
        return [Row(**common, metric=FAILURE_RATE, statistic="rate", unit="fraction",
                    note=f"no decided journeys in the {missing}")]
    # Over-dispersed counts carry less information: the effective counts (Rao & Scott).
    counts = [max(0, round(x / phi)) for x in (f_b, d_b, f_c, d_c)] if phi > 1 else [
        f_b, d_b, f_c, d_c]
    counts[1], counts[3] = max(1, counts[1]), max(1, counts[3])
    rate_test = proportion_test(*counts)
    method = rate_test.method + (f", counts / {phi:.2f} (over-dispersion)" if phi > 1 else "")
    rows = [
        Row(
            **common, metric=FAILURE_RATE, statistic="rate", unit="fraction",
            baseline=f_b / d_b, candidate=f_c / d_c, delta=f_c / d_c - f_b / d_b,
            p_value=rate_test.p_value, sampling_p=rate_test.p_value, method=method,
            threshold=thresholds.failure_rate, min_p=min_attainable_p(*counts),
        )
    ]
    for outcome in FAILURE_OUTCOMES:
        k_b, k_c = base_outcomes.get(outcome, 0), cand_outcomes.get(outcome, 0)
        if k_b == 0 and k_c > 0:
            k_eff = max(0, round(k_c / phi)) if phi > 1 else k_c
            test = proportion_test(0, counts[1], k_eff, counts[3], alternative="greater")
            rows.append(
                Row(
                    **common, metric=f"outcome:{outcome}", statistic="count", unit="count",
                    baseline=0, candidate=k_c, delta=k_c / d_c, p_value=test.p_value,
                    sampling_p=test.p_value, method=f"{test.method}, one-sided",
                    threshold=0.0, note="none in the baseline",
                    min_p=min_attainable_p(0, counts[1], k_eff, counts[3], "greater"),
                )
            )
    return rows


# --- verdicts ---------------------------------------------------------------------------


def verdict(row: Row, alpha: float) -> str:
    """The verdict of a row whose adjusted p is known (see docs/compare.md)."""
    if row.delta is None or row.threshold is None:
        return TOO_FEW if row.too_few else NOT_COMPARABLE
    if row.metric.startswith("outcome:"):
        if row.adjusted_p is None:
            return TOO_FEW
        return NEW_FAILURE_MODE if row.adjusted_p <= alpha else NOT_SIGNIFICANT
    if abs(row.delta) < row.threshold:
        return UNCHANGED
    if row.adjusted_p is None:
        return TOO_FEW
    if row.adjusted_p <= alpha:
        return WORSE if row.delta > 0 else BETTER
    if row.adjusted_sampling_p is not None and row.adjusted_sampling_p <= alpha:
        return WITHIN_NOISE
    return NOT_SIGNIFICANT


def finish(rows: Sequence[Row], alpha: float) -> tuple[Row, ...]:
    """Holm over the rows that can speak (Tarone's rule), then each row's verdict."""
    tested = [i for i, r in enumerate(rows) if r.p_value is not None and not r.too_few]
    chosen = tarone_selection([rows[i].min_p for i in tested], alpha)
    family = [i for i, keep in zip(tested, chosen, strict=True) if keep]
    out = list(rows)
    for i, keep in zip(tested, chosen, strict=True):
        if not keep:
            out[i] = replace(rows[i], too_few=True,
                             note=rows[i].note or "too few events to ever reach significance")
    adjusted = holm([rows[i].p_value for i in family])  # type: ignore[misc]
    adjusted_s = holm([rows[i].sampling_p for i in family])  # type: ignore[misc]
    for i, p, p_s in zip(family, adjusted, adjusted_s, strict=True):
        out[i] = replace(out[i], adjusted_p=p, adjusted_sampling_p=p_s)
    return tuple(replace(r, verdict=verdict(r, alpha)) for r in out)


def _metrics_of(side: Side) -> set[str]:
    return {m for run in side.runs for m in run.metrics()}


def _summary(side: Side, thresholds: Thresholds) -> SideSummary:
    return SideSummary(
        name=side.name,
        source=side.source,
        releases=tuple(side.releases),
        run_ids=tuple(str(r.run["id"]) for r in side.runs),
        journeys=sum(int(r.totals["journeys"]) for r in side.runs),
        capacity=tuple(capacity_at_slo(r, thresholds.slo).concurrency for r in side.runs),
    )


def compare_sides(
    baseline: Side, candidate: Side, thresholds: Thresholds, notes: Sequence[str] = ()
) -> Comparison:
    """Compare two loaded sides (comparability already checked by the caller)."""
    levels = match_levels(baseline.runs, candidate.runs)
    present = _metrics_of(baseline) | _metrics_of(candidate)
    order = [*METRIC_ORDER, *(m for m in METRICS if m not in METRIC_ORDER)]
    metrics = [m for m in order if m in present] + sorted(present - set(order))
    k_b, k_c = len(baseline.runs), len(candidate.runs)
    mode = "samples" if max(k_b, k_c) == 1 else "runs"
    data = {level: (level_data(baseline, level), level_data(candidate, level))
            for level in levels.both}
    distributions = {
        (level, metric): (base.pooled(metric), cand.pooled(metric))
        for level, (base, cand) in data.items() for metric in metrics
    }
    latency: dict[tuple[int | None, str, str], Row] = {}
    used: list[NoiseUsed] = []
    for metric in metrics:
        for statistic in STATISTICS:
            cells = {level: _cell(base, cand, metric, statistic)
                     for level, (base, cand) in data.items()}
            prior = thresholds.noise.for_row(metric, statistic)
            effects, measured = _run_effects(list(cells.values()), prior, k_b, k_c)
            used.append(NoiseUsed(metric, statistic, effects.tau, effects.df, prior.tau,
                                  None if measured is None else measured.tau,
                                  0.0 if measured is None else measured.df))
            threshold = thresholds.for_row(metric, statistic)
            for level, cell in cells.items():
                latency[(level, metric, statistic)] = _latency_row(
                    level, metric, statistic, [cell], effects, threshold)
            if len(cells) > 1:
                latency[(ALL_LEVELS, metric, statistic)] = _latency_row(
                    ALL_LEVELS, metric, statistic, list(cells.values()), effects, threshold)
    phi, _ = dispersion(
        [[failure_counts(o) for o in side_data.outcomes_per_run]
         for pair in data.values() for side_data in pair]
    )
    rows: list[Row] = []
    all_base: Counter[str] = Counter()
    all_cand: Counter[str] = Counter()
    for level, (base, cand) in data.items():
        rows.extend(latency[(level, m, s)] for m in metrics for s in STATISTICS)
        rows.extend(_failure_rows(level, base.outcomes, cand.outcomes, thresholds, phi))
        all_base.update(base.outcomes)
        all_cand.update(cand.outcomes)
    if len(levels.both) > 1:
        rows.extend(latency[(ALL_LEVELS, m, s)] for m in metrics for s in STATISTICS)
        rows.extend(_failure_rows(ALL_LEVELS, all_base, all_cand, thresholds, phi))
    for level in levels.baseline_only:
        rows.append(Row(level, "(level)", "", "", note="measured in the baseline only"))
    for level in levels.candidate_only:
        rows.append(Row(level, "(level)", "", "", note="measured in the candidate only"))
    all_notes = list(notes)
    if not levels.both:
        all_notes.append("no target concurrency was measured on both sides")
    return Comparison(
        baseline=_summary(baseline, thresholds),
        candidate=_summary(candidate, thresholds),
        rows=finish(rows, thresholds.alpha),
        thresholds=thresholds,
        mode=mode,
        notes=tuple(all_notes),
        noise=tuple(used),
        dispersion=phi,
        distributions=distributions,
    )
