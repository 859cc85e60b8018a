"""One self-contained HTML page: headline, rows table and embedded overlay plots.

Every string that came from a results or thresholds file goes through html.escape.
"""

from __future__ import annotations

import base64
import html

from bench.present.compare import format as fmt
from bench.present.compare import plots
from bench.present.compare.analysis import REGRESSIONS, TOO_FEW, UNCHANGED, Comparison, Row
from bench.present.compare.limits import STATISTICS

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; }
td.t { text-align: left; }
tr.worse td, tr.new td { background: #fbe3d6; }
tr.better td { background: #dff2ea; }
tr.unchanged td { color: #666; }
img { max-width: 100%; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row(row: Row) -> str:
    cls = {"worse": "worse", "new failure mode": "new", "better": "better"}.get(
        row.verdict, "unchanged" if row.verdict == UNCHANGED else "other"
    )
    cells = [
        (fmt.level(row), ""), (row.metric, "t"), (fmt.statistic(row), "t"),
        (fmt.value(row, "baseline"), ""), (fmt.value(row, "candidate"), ""),
        (fmt.delta(row), ""), (fmt.p_value(row), ""), (row.method, "t"),
        (row.verdict, "t"), (row.note, "t"),
    ]
    tds = "".join(f'<td class="{c}">{_e(text)}</td>' if c else f"<td>{_e(text)}</td>"
                  for text, c in cells)
    return f'<tr class="{cls}">{tds}</tr>'


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(comparison: Comparison) -> str:
    c = comparison
    t = c.thresholds
    base, cand = c.baseline, c.candidate
    headline = "regression" if c.regression else "no regression"
    metrics = list(dict.fromkeys(m for (_, m) in c.distributions))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>bench compare: {_e(base.label)} vs {_e(cand.label)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>bench compare: {_e(base.label)} &rarr; {_e(cand.label)}</h1>",
        f"<p><strong>Verdict: {_e(headline)}</strong> "
        f"({_e(', '.join(f'{n} {v}' for v, n in sorted(c.counts.items())))})</p>",
        "<ul>",
        f"<li>Baseline: {_e(base.label)} from {_e(base.source)}, {len(base.run_ids)} run(s), "
        f"{base.journeys} journeys</li>",
        f"<li>Candidate: {_e(cand.label)} from {_e(cand.source)}, {len(cand.run_ids)} run(s), "
        f"{cand.journeys} journeys</li>",
        f"<li>Test: {_e(fmt.mode_text(c))}; alpha {t.alpha:g}, Holm over {c.family_size} rows; "
        f"threshold {t.threshold * 100:g} %, failure rate {t.failure_rate * 100:g} points</li>",
        f"<li>Capacity at SLO ({_e(t.slo.describe())}): baseline "
        f"{_e(fmt.capacity(base.capacity))}, candidate {_e(fmt.capacity(cand.capacity))}</li>",
        f"<li>Run-to-run noise: {_e(fmt.noise_source(c))}</li>",
        *(f"<li>Note: {_e(n)}</li>" for n in c.notes),
        "</ul>",
    ]
    too_few = [r for r in c.rows if r.verdict == TOO_FEW]
    if too_few:
        parts.append(f"<p>{len(too_few)} row(s) had too few samples to be tested and were left "
                     "out of Holm's family (see the note column below).</p>")
    regressions = [r for r in c.rows if r.verdict in REGRESSIONS]
    if regressions:
        parts.append("<h2>Regressions</h2>")
        parts.append(_table(regressions))
    parts.append("<h2>Against concurrency</h2>")
    for metric in metrics:
        parts.append(_img(plots.metric_against_concurrency(c, metric), f"{metric} vs concurrency"))
    parts.append("<h2>Distributions per step</h2>")
    for metric in metrics:
        parts.append(f"<h3>{_e(metric)}</h3>")
        parts.append(_img(plots.distributions(c, metric), f"{metric} distributions"))
    parts.append("<h2>Run-to-run noise assumed</h2>")
    parts.append(_noise_table(c))
    parts.append("<h2>All rows</h2>")
    parts.append(_table(list(c.rows)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _noise_table(c: Comparison) -> str:
    """tau per metric and statistic as a relative sd, with the repeats' own estimate."""
    by_metric: dict[str, dict[str, str]] = {}
    for used in c.noise:
        shown = fmt.noise_percent(used.tau)
        if used.repeats_tau is not None:
            shown += f" (repeats: {fmt.noise_percent(used.repeats_tau)})"
        by_metric.setdefault(used.metric, {})[used.statistic] = shown
    head = "".join(f"<th>{_e(h)}</th>" for h in ("metric", *STATISTICS))
    body = "".join(
        "<tr>" + f'<td class="t">{_e(m)}</td>' + "".join(
            f"<td>{_e(per.get(s, '-'))}</td>" for s in STATISTICS) + "</tr>"
        for m, per in by_metric.items()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table(rows: list[Row]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("conc.", "metric", "stat", "baseline [95 % CI]", "candidate [95 % CI]",
                  "delta", "p (Holm)", "test", "verdict", "note")
    )
    body = "\n".join(_row(r) for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
