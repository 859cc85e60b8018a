"""Markdown for a PR comment or CI job summary: headline, changed rows, all rows folded away."""

from __future__ import annotations

from bench.present.compare import format as fmt
from bench.present.compare.analysis import UNCHANGED, VERDICTS, Comparison, Row

_HEADER = (
    "| conc. | metric | stat | baseline [95 % CI] | candidate [95 % CI] | delta | p (Holm) "
    "| verdict |\n|---:|---|---|---:|---:|---:|---:|---|"
)


def md_escape(text: str) -> str:
    """Text from a results file, safe inside a table cell: no HTML, no cell breaks."""
    return (
        " ".join(str(text).split())
        .replace("\\", "\\\\")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("`", "\\`")
        .replace("*", "\\*")
        .replace("_", "\\_")
        .replace("[", "\\[")
        .replace("]", "\\]")
    )


def _row(row: Row) -> str:
    cells = [
        fmt.level(row),
        md_escape(row.metric),
        fmt.statistic(row),
        fmt.value(row, "baseline"),
        fmt.value(row, "candidate"),
        fmt.delta(row),
        fmt.p_value(row),
        f"**{row.verdict}**" if row.verdict not in (UNCHANGED, "~") else row.verdict,
    ]
    return "| " + " | ".join(cells) + " |"


def _where(row: Row) -> str:
    parts = [f"concurrency {fmt.level(row)}", md_escape(row.metric), fmt.statistic(row)]
    return " ".join(p for p in parts if p)


def _table(rows: list[Row]) -> list[str]:
    lines = [_HEADER]
    lines.extend(_row(r) for r in rows)
    return lines


def render_markdown(comparison: Comparison) -> str:
    c = comparison
    t = c.thresholds
    counts = c.counts
    headline = "regression" if c.regression else "no regression"
    tally = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    base, cand = c.baseline, c.candidate
    lines = [
        f"## bench compare: {md_escape(base.label)} -> {md_escape(cand.label)}",
        "",
        f"**Verdict: {headline}** ({tally})",
        "",
        f"- Baseline: {md_escape(base.label)}, {len(base.run_ids)} run(s), "
        f"{base.journeys} journeys; candidate: {md_escape(cand.label)}, "
        f"{len(cand.run_ids)} run(s), {cand.journeys} journeys.",
        f"- Test: {fmt.mode_text(c)}; alpha {t.alpha:g} with Holm's correction over "
        f"{c.family_size} tested rows; change threshold {t.threshold * 100:g} % "
        f"(failure rate: {t.failure_rate * 100:g} percentage points).",
        f"- Capacity at SLO ({t.slo.describe()}): baseline "
        f"{fmt.capacity(base.capacity)}, candidate {fmt.capacity(cand.capacity)}.",
    ]
    lines.extend(f"- Note: {md_escape(note)}" for note in c.notes)
    notable = [r for r in c.rows if r.verdict != UNCHANGED]
    lines.append("")
    if notable:
        lines.extend(_table(notable))
    else:
        lines.append("Every row is unchanged (within its threshold).")
    noted = [r for r in notable if r.note]
    if noted:
        lines.append("")
        lines.extend(f"- {_where(r)}: {md_escape(r.note)}" for r in noted)
    lines += [
        "",
        "`~` = beyond the threshold but not significant; verdicts need both the threshold "
        "and significance.",
        "",
        f"<details><summary>All {len(c.rows)} rows</summary>",
        "",
        *_table(list(c.rows)),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)
