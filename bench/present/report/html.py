"""report.html (pure): one self-contained page, plots embedded as data: URIs, no script."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from bench.present.report.data import RunData
from bench.present.report.figures import Plot
from bench.present.report.spread import SPREAD_HEADER, spread_note, spread_rows
from bench.present.report.tables import (
    ACCURACY_HEADER,
    METRIC_HEADER,
    OUTCOME_HEADER,
    STEP_HEADER,
    accuracy_rows,
    estimation_note,
    headline,
    metric_rows,
    outcome_rows,
    resolution,
    run_facts,
    step_rows,
    verdict_rows,
)
from bench.present.report.warnings import ReportWarning

# Inline style only: the page must open offline, from a CI artefact or an e-mail.
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.headline{background:#eef6fb;border-left:4px solid #0072B2;padding:.6em 1em;margin:1em 0}
.headline p{margin:.3em 0}.warn{background:#fff6e5;border-left:4px solid #E69F00;
padding:.5em 1em;margin:.5em 0}.fail{color:#D55E00;font-weight:600}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;max-width:60em}dl{display:grid;
grid-template-columns:max-content auto;gap:.1em 1em;font-size:.9em}dt{font-weight:600}dd{margin:0}
.scroll{overflow-x:auto}
"""


def _cell(value: str, tag: str = "td") -> str:
    cls = ' class="fail"' if value == "FAIL" else ""
    return f"<{tag}{cls}>{escape(value)}</{tag}>"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(_cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>' \
           f"</table></div>"


def image(plot: Plot, anchor: str) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure id="{escape(anchor)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(plot.title)}"><figcaption><b>{escape(plot.title)}.</b> '
            f"{escape(plot.caption)}</figcaption></figure>")


def run_section(data: RunData, warnings: Sequence[ReportWarning], plots: Sequence[Plot],
                number: int) -> str:
    top = headline(data)
    parts = [f'<section id="run-{number}"><h2>{escape(data.release)} on '
             f"{escape(data.target_label)}</h2>"]
    parts.append(f'<div class="headline"><p><b>{escape(top.capacity)}</b></p>'
                 f"<p>{escape(top.knee)}</p><p>SLO: {escape(top.slo)}.</p></div>")
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in run_facts(data))
    parts.append(f"<dl>{facts}</dl>")
    if warnings:
        parts.append("<h3>Warnings</h3>")
        parts += [f'<div class="warn">{escape(w.message)}<br><b>Fix:</b> {escape(w.fix)}</div>'
                  for w in warnings]
    parts.append("<h3>Steps</h3>")
    parts.append(table(STEP_HEADER, step_rows(data)))
    parts.append(f"<p>{escape(resolution(data))}</p>")
    note = estimation_note(data)
    if note is not None:
        parts.append("<h3>How ready and phase times were estimated (all steps)</h3>")
        parts.append(f"<p>{escape(note)}</p>")
        parts.append(table(ACCURACY_HEADER, accuracy_rows(data)))
    parts += [image(p, f"run-{number}-{p.name}") for p in plots]
    parts.append("<h3>SLO verdict per step</h3>")
    header, *rows = verdict_rows(data)
    parts.append(table(header, rows))
    parts.append("<h3>Outcomes per step (measured)</h3>")
    parts.append(table(OUTCOME_HEADER, outcome_rows(data)))
    parts.append("<h3>Every metric per step (measured)</h3>")
    for s in data.steps:
        parts.append(f"<h4>Step {s.index + 1}: target {s.target}, achieved "
                     f"{s.achieved:.3g}</h4>")
        parts.append(table(METRIC_HEADER, metric_rows(dict(s.metrics))) if s.metrics
                     else "<p>No samples.</p>")
    parts.append("<h4>All steps merged</h4>")
    parts.append(table(METRIC_HEADER, metric_rows(dict(data.merged))) if data.merged
                 else "<p>No samples.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def report_html(runs: Sequence[tuple[RunData, Sequence[ReportWarning], Sequence[Plot]]]) -> str:
    title = "Async-session benchmark: " + ", ".join(d.release for d, _, _ in runs)
    sections = "\n".join(run_section(d, w, p, i + 1) for i, (d, w, p) in enumerate(runs))
    spread = spread_rows([d for d, _, _ in runs])
    if spread:
        sections = (f'<section id="spread"><h2>Spread between the {len(runs)} runs</h2>'
                    f"<p>{escape(spread_note([d for d, _, _ in runs]))}</p>"
                    f"{table(SPREAD_HEADER, spread)}</section>\n{sections}")
    # No <script>, no external URL: a strict CSP makes that a promise the browser keeps.
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>\n{sections}\n"
        "<footer><p>Made by async-session-bench <code>bench report</code>. Percentiles are "
        "nearest-rank from HDR histograms (within 0.1 %); intervals are distribution-free "
        "95 % confidence intervals from order statistics.</p></footer></body></html>\n"
    )


__all__ = ["report_html", "table"]
