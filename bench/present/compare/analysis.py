"""Verdict logic: matched levels -> rows (values, CIs, delta, p) -> Holm -> verdicts (pure).

Nothing here reads files: it takes loaded `Results` and returns a `Comparison`.
How each row is tested (docs/compare.md has the reasoning and sources):

* one run per side (or fewer than `min_runs_per_side(alpha)` runs, pooled): every
  journey is a sample.  `mean` rows use Mann-Whitney U on the histograms (a shift
  of the whole distribution); `p50`/`p90`/`p99` rows use the pooled-cut quantile
  test (does the percentile itself move?).
* enough runs per side (benchstat style): each run gives one value per statistic;
  the row shows the median of the runs' values and tests them with Mann-Whitney
  U, so run-to-run variance is part of the noise, as it should be.
* failure rate: two-proportion test (Fisher's exact for small counts); a new
  failure mode is a one-sided test of zero in the baseline against the candidate.

All p-values of one comparison form one Holm family, so the chance that a
comparison of two identical distributions reports any regression is at most alpha.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.analyse.capacity import capacity_at_slo
from bench.analyse.significance import (
    TestResult,
    buckets_of,
    holm,
    mann_whitney,
    min_runs_per_side,
    proportion_test,
    quantile_test,
)
from bench.analyse.stats import Buckets, mean, quantile, quantile_interval
from bench.core import exitcodes
from bench.core.journey import METRICS
from bench.core.outcomes import FAILURE_OUTCOMES, failure_counts
from bench.present.compare.inputs import Side, match_levels, steps_by_level
from bench.present.compare.limits import QUANTILES, STATISTICS, Thresholds

WORSE = "worse"
BETTER = "better"
UNCHANGED = "unchanged"
NOT_SIGNIFICANT = "~"
NOT_COMPARABLE = "not comparable"
NEW_FAILURE_MODE = "new failure mode"
VERDICTS = (WORSE, NEW_FAILURE_MODE, BETTER, NOT_SIGNIFICANT, NOT_COMPARABLE, UNCHANGED)
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

    concurrency: int | None  # None: all matched levels
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
    p_value: float | None = None
    adjusted_p: float | None = None  # Holm over the comparison's family
    method: str = ""
    threshold: float | None = None
    verdict: str = NOT_COMPARABLE
    note: str = ""


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
class Comparison:
    """The outcome of comparing a candidate with a baseline."""

    baseline: SideSummary
    candidate: SideSummary
    rows: tuple[Row, ...]
    thresholds: Thresholds
    mode: str  # "samples", "pooled" or "runs"
    min_runs: int
    notes: tuple[str, ...] = ()
    # (level, metric) -> pooled (baseline, candidate) buckets, for distribution plots
    distributions: Mapping[tuple[int, str], tuple[Buckets | None, Buckets | None]] = field(
        default_factory=dict, repr=False
    )

    @property
    def family_size(self) -> int:
        return sum(1 for r in self.rows if r.p_value is not None)

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

    def pooled(self, metric: str) -> Buckets | None:
        runs = self.per_run.get(metric)
        return merge_buckets(runs) if runs else None


def level_data(side: Side, level: int) -> LevelData:
    per_run: dict[str, list[Buckets]] = {}
    outcomes: Counter[str] = Counter()
    for run in side.runs:
        steps = steps_by_level(run)[level]
        by_metric: dict[str, list[Buckets]] = {}
        for step in steps:
            outcomes.update(step["measured"]["outcomes"])
            for metric in step["measured"]["histograms"]:
                hist = run.histogram(step["index"], metric)
                if hist is not None:
                    by_metric.setdefault(metric, []).append(Buckets.of(hist))
        for metric, parts in by_metric.items():
            merged = parts[0] if len(parts) == 1 else merge_buckets(parts)
            per_run.setdefault(metric, []).append(merged)
    return LevelData({m: tuple(v) for m, v in per_run.items()}, dict(outcomes))


# --- statistics of one sample -----------------------------------------------------------


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


# --- rows -------------------------------------------------------------------------------


def _relative(base: float | None, cand: float | None) -> float | None:
    if base is None or cand is None or base <= 0:
        return None
    return (cand - base) / base


def _latency_row(
    level: int, metric: str, statistic: str, base: LevelData, cand: LevelData,
    across_runs: bool, min_runs: int, threshold: float,
) -> Row:
    b, c = base.pooled(metric), cand.pooled(metric)
    n_b = b.total if b else 0
    n_c = c.total if c else 0
    common: dict[str, Any] = {
        "concurrency": level, "metric": metric, "statistic": statistic, "unit": "us",
        "n_baseline": n_b, "n_candidate": n_c, "threshold": threshold,
    }
    if not n_b or not n_c or b is None or c is None:
        missing = "baseline" if not n_b else "candidate"
        return Row(**common, note=f"no {metric} samples in the {missing}")
    note = ""
    if across_runs:
        b_runs = _per_run(base, metric, statistic)
        c_runs = _per_run(cand, metric, statistic)
        if min(len(b_runs), len(c_runs)) >= min_runs:
            b_set, c_set = buckets_of(map(round, b_runs)), buckets_of(map(round, c_runs))
            test: TestResult = mann_whitney(b_set, c_set)
            return Row(
                **common,
                baseline=statistics.median(b_runs), candidate=statistics.median(c_runs),
                baseline_ci=statistic_interval(b_set, "p50"),
                candidate_ci=statistic_interval(c_set, "p50"),
                delta=_relative(statistics.median(b_runs), statistics.median(c_runs)),
                p_value=test.p_value, method=f"{test.method} on {len(b_runs)}+{len(c_runs)} runs",
            )
        note = "too few runs with samples for an across-run test: runs pooled"
    # Mann-Whitney for the mean row (a whole-distribution shift), the quantile test for
    # a percentile (U barely moves when only the tail does).
    if statistic == "mean":  # noqa: SIM108 - the comment above belongs to the branch
        test = mann_whitney(b, c)
    else:
        test = quantile_test(b, c, QUANTILES[statistic])
    b_value, c_value = statistic_value(b, statistic), statistic_value(c, statistic)
    return Row(
        **common,
        baseline=b_value, candidate=c_value,
        baseline_ci=statistic_interval(b, statistic), candidate_ci=statistic_interval(c, statistic),
        delta=_relative(b_value, c_value), p_value=test.p_value, method=test.method, note=note,
    )


def _per_run(data: LevelData, metric: str, statistic: str) -> list[float]:
    values = (statistic_value(r, statistic) for r in data.per_run[metric])
    return [v for v in values if v is not None]


def _failure_rows(
    level: int | None, base_outcomes: Mapping[str, int], cand_outcomes: Mapping[str, int],
    thresholds: Thresholds,
) -> list[Row]:
    f_b, d_b = failure_counts(base_outcomes)
    f_c, d_c = failure_counts(cand_outcomes)
    common: dict[str, Any] = {"concurrency": level, "n_baseline": d_b, "n_candidate": d_c}
    if not d_b or not d_c:
        missing = "baseline" if not d_b else "candidate"
        return [Row(**common, metric=FAILURE_RATE, statistic="rate", unit="fraction",
                    note=f"no decided journeys in the {missing}")]
    rate_test = proportion_test(f_b, d_b, f_c, d_c)
    rows = [
        Row(
            **common, metric=FAILURE_RATE, statistic="rate", unit="fraction",
            baseline=f_b / d_b, candidate=f_c / d_c, delta=f_c / d_c - f_b / d_b,
            p_value=rate_test.p_value, method=rate_test.method,
            threshold=thresholds.failure_rate,
        )
    ]
    for outcome in FAILURE_OUTCOMES:
        k_b, k_c = base_outcomes.get(outcome, 0), cand_outcomes.get(outcome, 0)
        if k_b == 0 and k_c > 0:
            test = proportion_test(0, d_b, k_c, d_c, alternative="greater")
            rows.append(
                Row(
                    **common, metric=f"outcome:{outcome}", statistic="count", unit="count",
                    baseline=0, candidate=k_c, delta=k_c / d_c, p_value=test.p_value,
                    method=f"{test.method}, one-sided", threshold=0.0,
                    note="none in the baseline",
                )
            )
    return rows


def verdict(row: Row, alpha: float) -> str:
    """The verdict of a row whose adjusted p is known (see docs/compare.md)."""
    if row.delta is None or row.adjusted_p is None or row.threshold is None:
        return NOT_COMPARABLE
    if row.metric.startswith("outcome:"):
        return NEW_FAILURE_MODE if row.adjusted_p <= alpha else NOT_SIGNIFICANT
    if abs(row.delta) < row.threshold:
        return UNCHANGED
    if row.adjusted_p > alpha:
        return NOT_SIGNIFICANT
    return WORSE if row.delta > 0 else BETTER


def finish(rows: Sequence[Row], alpha: float) -> tuple[Row, ...]:
    """Holm-adjust every tested row's p-value as one family, then decide each verdict."""
    tested = [i for i, r in enumerate(rows) if r.p_value is not None]
    adjusted = holm([rows[i].p_value for i in tested])  # type: ignore[misc]
    out = list(rows)
    for i, p in zip(tested, adjusted, strict=True):
        out[i] = replace(rows[i], adjusted_p=p)
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
    # An across-run row can only ever be flagged if its best possible exact p (complete
    # separation of the runs) survives Holm's first step, alpha / m, for the m rows of the
    # family; with fewer runs it would be a test that cannot fire, so runs are pooled.
    family = len(levels.both) * (len(metrics) * len(STATISTICS) + 1) + 1
    min_runs = min_runs_per_side(thresholds.alpha / max(1, family))
    n_runs = min(len(baseline.runs), len(candidate.runs))
    across_runs = n_runs >= min_runs
    single = max(len(baseline.runs), len(candidate.runs)) == 1
    mode = "runs" if across_runs else ("samples" if single else "pooled")
    rows: list[Row] = []
    distributions: dict[tuple[int, str], tuple[Buckets | None, Buckets | None]] = {}
    all_base: Counter[str] = Counter()
    all_cand: Counter[str] = Counter()
    for level in levels.both:
        base, cand = level_data(baseline, level), level_data(candidate, level)
        for metric in metrics:
            distributions[(level, metric)] = (base.pooled(metric), cand.pooled(metric))
            for statistic in STATISTICS:
                rows.append(
                    _latency_row(
                        level, metric, statistic, base, cand, across_runs, min_runs,
                        thresholds.for_row(metric, statistic),
                    )
                )
        rows.extend(_failure_rows(level, base.outcomes, cand.outcomes, thresholds))
        all_base.update(base.outcomes)
        all_cand.update(cand.outcomes)
    if len(levels.both) > 1:
        rows.extend(_failure_rows(ALL_LEVELS, all_base, all_cand, thresholds))
    for level in levels.baseline_only:
        rows.append(Row(level, "(level)", "", "", note="measured in the baseline only"))
    for level in levels.candidate_only:
        rows.append(Row(level, "(level)", "", "", note="measured in the candidate only"))
    all_notes = list(notes)
    if mode == "pooled":
        all_notes.append(
            f"{len(baseline.runs)} baseline and {len(candidate.runs)} candidate run(s): fewer "
            f"than {min_runs} per side, so runs are pooled and tested sample by sample "
            "(run-to-run variance is not part of the test)"
        )
    if not levels.both:
        all_notes.append("no target concurrency was measured on both sides")
    return Comparison(
        baseline=_summary(baseline, thresholds),
        candidate=_summary(candidate, thresholds),
        rows=finish(rows, thresholds.alpha),
        thresholds=thresholds,
        mode=mode,
        min_runs=min_runs,
        notes=tuple(all_notes),
        distributions=distributions,
    )
