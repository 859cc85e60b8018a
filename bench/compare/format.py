"""Text for one row's cells, shared by the Markdown and HTML outputs (plain strings, unescaped)."""

from __future__ import annotations

from bench.compare.analysis import Comparison, Row


def duration(us: float) -> str:
    """3 significant digits in the unit that suits the value."""
    if us >= 1_000_000:
        return f"{us / 1_000_000:.3g} s"
    if us >= 1_000:
        return f"{us / 1_000:.3g} ms"
    return f"{us:.3g} us"


def value(row: Row, which: str) -> str:
    v = row.baseline if which == "baseline" else row.candidate
    ci = row.baseline_ci if which == "baseline" else row.candidate_ci
    if v is None:
        return "-"
    if row.unit == "us":
        text = duration(v)
        if ci is not None:
            text += f" [{_bare(ci[0])}, {_bare(ci[1])}]"
        return text
    if row.unit == "fraction":
        return f"{v * 100:.3g} %"
    return f"{v:g}"


def _bare(us: float) -> str:
    """A CI bound without its unit (the value before it carries the unit's scale)."""
    return duration(us).split(" ")[0] if us >= 1 else f"{us:.3g}"


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
