"""The spread between repeated runs of one release (pure): what run-to-run noise looks like.

With several runs in one report (a result set from `bench run --repeat N`, or several
results files), each metric's p50 and p90 and the failure rate are set side by side
across the runs: the median run, the lowest and highest, and max / min - 1.  A
comparison assumes or measures exactly this noise (docs/compare.md); the table lets a
reader see it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from bench.core import text
from bench.present.report.data import MetricStats, RunData, ordered_metrics

SPREAD_QUANTILES: tuple[float, ...] = (0.5, 0.9)
SPREAD_HEADER = ("level", "metric", "statistic", "runs", "median run", "lowest", "highest",
                 "highest / lowest")


def _row(level: str, metric: str, name: str, values: Sequence[float],
         show: object) -> tuple[str, ...]:
    low, high = min(values), max(values)
    ratio = f"+{(high / low - 1) * 100:.1f} %" if low > 0 else "-"
    return (level, metric, name, str(len(values)), show(statistics.median(values)),  # type: ignore[operator]
            show(low), show(high), ratio)  # type: ignore[operator]


def _metric_rows(level: str, per_run: Sequence[Mapping[str, MetricStats]]) -> list[tuple[str, ...]]:
    rows = []
    names = ordered_metrics(sorted({m for run in per_run for m in run}))
    for metric in names:
        for q in SPREAD_QUANTILES:
            values = [float(v) for run in per_run
                      if (stats := run.get(metric)) is not None
                      and (v := stats.quantiles.get(q)) is not None]
            if len(values) >= 2:
                rows.append(_row(level, metric, text.quantile_name(q), values, text.duration))
    return rows


def spread_rows(runs: Sequence[RunData], *, per_level: bool = True) -> list[tuple[str, ...]]:
    """Rows of SPREAD_HEADER: all levels merged first, then each level (if `per_level`)."""
    if len(runs) < 2:
        return []
    rows = _metric_rows("all", [r.merged for r in runs])
    rates = []
    for r in runs:
        failed = sum(s.failures for s in r.steps)
        decided = sum(s.decided for s in r.steps)
        if decided:
            rates.append(failed / decided)
    if len(rates) >= 2:
        low, high = min(rates), max(rates)
        rows.append(("all", "failure rate", "", str(len(rates)), text.percent(
            statistics.median(rates)), text.percent(low), text.percent(high),
            f"{(high - low) * 100:+.2f} pts"))
    if per_level:
        levels = sorted(set.intersection(*(set(r.levels) for r in runs)))
        for level in levels:
            per_run = []
            for r in runs:
                merged: dict[str, MetricStats] = {}
                for step in r.steps:
                    if step.target == level:
                        merged.update(step.metrics)  # a level visited twice: the last visit
                per_run.append(merged)
            rows += _metric_rows(str(level), per_run)
    return rows


def spread_note(runs: Sequence[RunData]) -> str:
    return (f"{len(runs)} runs of {', '.join(sorted({r.release for r in runs}))}: each "
            "statistic per run, its median run, lowest and highest.  Runs of one release "
            "differ by their samples and by the machine or provider between runs; "
            "bench compare accounts for both (docs/compare.md).")


__all__ = ["SPREAD_HEADER", "spread_note", "spread_rows"]
