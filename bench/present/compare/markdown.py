"""Markdown for a PR comment or CI job summary: headline, changed rows, all rows folded away."""

from __future__ import annotations

from bench.present.compare import format as fmt
from bench.present.compare.analysis import (
    TOO_FEW,
    UNCHANGED,
    VERDICTS,
    WITHIN_NOISE,
    Comparison,
    Row,
)
from bench.present.compare.limits import STATISTICS

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


_PLAIN = (UNCHANGED, "~", WITHIN_NOISE, TOO_FEW)


def _row(row: Row) -> str:
    cells = [
        fmt.level(row),
        md_escape(row.metric),
        fmt.statistic(row),
        fmt.value(row, "baseline"),
        fmt.value(row, "candidate"),
        fmt.delta(row),
        fmt.p_value(row),
        f"**{row.verdict}**" if row.verdict not in _PLAIN else row.verdict,
    ]
    return "| " + " | ".join(cells) + " |"


def _where(row: Row) -> str:
    parts = [f"concurrency {fmt.level(row)}", md_escape(row.metric), fmt.statistic(row)]
    return " ".join(p for p in parts if p)


def _table(rows: list[Row]) -> list[str]:
    lines = [_HEADER]
    lines.extend(_row(r) for r in rows)
    return lines


def too_few_summary(rows: list[Row]) -> str:
    """Which statistics could not be tested where: 'p99 at 1, 2, 4, 8, all; ...'."""
    where: dict[str, list[str]] = {}
    for row in rows:
        key = fmt.statistic(row) or row.metric
        level = fmt.level(row)
        if level not in where.setdefault(key, []):
            where[key].append(level)
    return "; ".join(f"{md_escape(k)} at {', '.join(v)}" for k, v in where.items())


def noise_table(comparison: Comparison) -> list[str]:
    """tau per metric and statistic, as the relative sd of one run around its release."""
    by_metric: dict[str, dict[str, float]] = {}
    for used in comparison.noise:
        by_metric.setdefault(used.metric, {})[used.statistic] = used.tau
    lines = ["| metric | " + " | ".join(STATISTICS) + " |",
             "|---|" + "---:|" * len(STATISTICS)]
    for metric, per in by_metric.items():
        cells = [fmt.noise_percent(per.get(s)) for s in STATISTICS]
        lines.append(f"| {md_escape(metric)} | " + " | ".join(cells) + " |")
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
    lines.append(f"- Run-to-run noise: {md_escape(fmt.noise_source(c))}.")
    if c.dispersion > 1:
        lines.append(f"- Failure counts scatter {c.dispersion:.2f}x more than binomial between "
                     "the repeats: their tests use counts divided by that.")
    lines.extend(f"- Note: {md_escape(note)}" for note in c.notes)
    too_few = [r for r in c.rows if r.verdict == TOO_FEW]
    if too_few:
        lines.append(f"- {len(too_few)} row(s) with too few samples to test, left out of "
                     f"Holm's family: {too_few_summary(too_few)}.")
    notable = [r for r in c.rows if r.verdict not in (UNCHANGED, TOO_FEW)]
    lines.append("")
    if notable:
        lines.extend(_table(notable))
    else:
        lines.append("Every tested row is unchanged (within its threshold).")
    noted = [r for r in notable if r.note]
    if noted:
        lines.append("")
        lines.extend(f"- {_where(r)}: {md_escape(r.note)}" for r in noted)
    lines += [
        "",
        "`~` = beyond the threshold but not significant; `within run-to-run noise` = beyond "
        "the threshold and significant for these runs' samples, but not beyond what runs of "
        "one release differ by; verdicts need both the threshold and significance.",
        "",
        "<details><summary>Run-to-run noise assumed (one run's sd around its release)"
        "</summary>",
        "",
        *noise_table(c),
        "",
        "</details>",
        "",
        f"<details><summary>All {len(c.rows)} rows</summary>",
        "",
        *_table(list(c.rows)),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)
