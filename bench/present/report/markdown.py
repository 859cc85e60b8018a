"""summary.md (pure): the headline, per-step table and warnings, fit for a CI job summary."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bench.present.report.data import RunData
from bench.present.report.spread import SPREAD_HEADER, spread_note, spread_rows
from bench.present.report.tables import (
    STEP_HEADER,
    estimation_note,
    headline,
    resolution,
    run_facts,
    step_rows,
)
from bench.present.report.warnings import ReportWarning

# Characters Markdown (and GitHub's HTML-in-Markdown) would interpret; strings from
# the target or the command line are shown literally.
# <, > and & become entities (CommonMark shows them literally and no renderer
# treats them as HTML); the rest get a backslash.
_SPECIAL = re.compile(r"([\\`*_\[\]|#!~])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(value: str) -> str:
    """Markdown-safe literal text on one line."""
    text = " ".join(value.split())
    text = "".join(_ENTITIES.get(c, c) for c in text)
    return _SPECIAL.sub(r"\\\1", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(escape(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return lines


def run_section(data: RunData, warnings: Sequence[ReportWarning], *, level: int = 2) -> list[str]:
    h = "#" * level
    top = headline(data)
    lines = [f"{h} {escape(data.release)} on {escape(data.target_label)}", ""]
    lines += [f"**{escape(top.capacity)}**", "", escape(top.knee), "",
              f"SLO: {escape(top.slo)}.", ""]
    lines += [", ".join(f"{escape(k)}: {escape(v)}" for k, v in run_facts(data)), ""]
    lines += _table(STEP_HEADER, step_rows(data))
    lines += ["", escape(resolution(data)), ""]
    note = estimation_note(data)
    if note is not None:
        lines += [escape(note), ""]
    if warnings:
        lines += [f"{h}# Warnings", ""]
        lines += [f"- {escape(w.message)} *Fix:* {escape(w.fix)}" for w in warnings]
        lines.append("")
    return lines


def summary_markdown(runs: Sequence[tuple[RunData, Sequence[ReportWarning]]]) -> str:
    lines = ["# Async-session benchmark report", ""]
    spread = spread_rows([data for data, _ in runs], per_level=False)
    if spread:
        lines += [f"## Spread between the {len(runs)} runs", "",
                  escape(spread_note([data for data, _ in runs])), ""]
        lines += _table(SPREAD_HEADER, spread)
        lines += ["", "Per level: report.html.", ""]
    for data, warnings in runs:
        lines += run_section(data, warnings)
    lines.append("Plots, per-metric tables and outcome counts: report.html.")
    return "\n".join(lines) + "\n"


__all__ = ["escape", "summary_markdown"]
