"""Text for one row's cells, shared by the Markdown and HTML outputs (plain strings, unescaped)."""

from __future__ import annotations

import math

from bench.core.text import duration, number, percent, unit_for
from bench.present.compare.analysis import Comparison, Row


def value(row: Row, which: str) -> str:
    v = row.baseline if which == "baseline" else row.candidate
    ci = row.baseline_ci if which == "baseline" else row.candidate_ci
    if v is None:
        return "-"
    if row.unit == "us":
        if ci is None:
            return duration(v)
        # The bounds in the value's own unit: "999 ms [980, 1020]", never "[980, 1.02]".
        scale, unit = unit_for(v)
        low, high = (number(bound, scale) for bound in ci)
        return f"{number(v, scale)} {unit} [{low}, {high}]"
    if row.unit == "fraction":
        return percent(v)
    return f"{v:g}"


def delta(row: Row) -> str:
    if row.delta is None:
        return "-"
    if row.unit == "us":
        return f"{row.delta * 100:+.1f} %"
    if row.unit == "fraction":
        return f"{row.delta * 100:+.2f} pts"
    return f"+{row.candidate:g}" if row.candidate is not None else "-"


def p_value(row: Row) -> str:
    p = row.adjusted_p
    if p is None:
        return "-"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def level(row: Row) -> str:
    return "all" if row.concurrency is None else f"{row.concurrency:g}"


def statistic(row: Row) -> str:
    return row.statistic if row.statistic not in ("rate", "count") else ""


def mode_text(comparison: Comparison) -> str:
    b, c = len(comparison.baseline.run_ids), len(comparison.candidate.run_ids)
    if comparison.mode == "runs":
        return (
            f"{b} baseline and {c} candidate run(s): each run's statistic with its sampling "
            "variance, runs differing by a run effect estimated from the repeats (mixed-model "
            "t test; values are the runs' geometric means with 95 % intervals across runs)"
        )
    return (
        "one run per side: each statistic with its sampling variance plus the run-to-run "
        "noise assumed below (mixed-model t test; intervals are within the run)"
    )


def noise_percent(tau: float | None) -> str:
    """A log-scale sd as the relative change one sd of it makes: '+-4.1 %'."""
    if tau is None:
        return "-"
    return f"\u00b1{math.expm1(tau) * 100:.1f} %"


def noise_source(comparison: Comparison) -> str:
    prior = comparison.thresholds.noise
    if comparison.mode == "runs":
        return (
            "estimated from the repeats (their spread beyond each run's sampling variance, "
            f"pooled over levels), moderated by the default below worth {prior.df:g} degrees "
            f"of freedom; default: {prior.source}"
        )
    return f"not measurable with one run per side, so assumed: {prior.source}"


def capacity(values: tuple[int | None, ...]) -> str:
    shown = sorted({"none" if v is None else str(v) for v in values})
    if len(values) == 1 or len(shown) == 1:
        return shown[0]
    return " / ".join("none" if v is None else str(v) for v in values)
