"""Text for one row's cells, shared by the Markdown and HTML outputs (plain strings, unescaped)."""

from __future__ import annotations

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
    return "all" if row.concurrency is None else str(row.concurrency)


def statistic(row: Row) -> str:
    return row.statistic if row.statistic not in ("rate", "count") else ""


def mode_text(comparison: Comparison) -> str:
    if comparison.mode == "runs":
        return (
            "across runs (benchstat style: one value per run, Mann-Whitney U on the runs' "
            "values; median of runs shown)"
        )
    if comparison.mode == "pooled":
        return (
            f"runs pooled, sample by sample (an across-run test needs {comparison.min_runs} "
            "runs per side at this alpha and number of rows)"
        )
    return "sample by sample (one run per side)"


def capacity(values: tuple[int | None, ...]) -> str:
    shown = sorted({"none" if v is None else str(v) for v in values})
    if len(values) == 1 or len(shown) == 1:
        return shown[0]
    return " / ".join("none" if v is None else str(v) for v in values)
