"""The edge of the report: load results files, build everything, write the files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.analyse.capacity import SLO
from bench.present.report.data import RunData, run_data
from bench.present.report.figures import DEFAULT_SVG, Plot, plots
from bench.present.report.html import report_html
from bench.present.report.markdown import summary_markdown
from bench.present.report.summary_json import summary_json
from bench.present.report.warnings import ReportWarning, warnings_for
from bench.record.result_set import runs_of
from bench.record.results import ResultsError, load_results

PLOTS_DIR = "plots"


def expand_sets(paths: Sequence[Path]) -> list[Path]:
    """Results files as given, a result-set file (or its folder) as the runs it names."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir() and (path / "result-set.json").is_file():
            path = path / "result-set.json"
        listed = runs_of(path) if path.is_file() else None
        out.extend(listed if listed is not None else [path])
    return out


def build_report(
    paths: Sequence[Path], out_dir: Path, *, slo: SLO | None = None,
    svg: bool | frozenset[str] = DEFAULT_SVG,
) -> Path:
    """Write report.html, summary.md, summary.json and plots/*.png for results files.

    Every file is loaded (and validated) before anything is written, so bad input
    (ResultsError, one line) leaves `out_dir` untouched.  Returns report.html's path.
    """
    if not paths:
        raise ResultsError("no results file given")
    loaded = [load_results(path) for path in expand_sets(paths)]
    runs: list[tuple[RunData, list[ReportWarning], list[Plot]]] = []
    for results in loaded:
        data = run_data(results, slo)
        runs.append((data, warnings_for(data), plots(data, svg=svg)))
    out_dir = Path(out_dir)
    plot_dir = out_dir / PLOTS_DIR
    plot_dir.mkdir(parents=True, exist_ok=True)
    for number, (_, _, rendered) in enumerate(runs, start=1):
        prefix = f"run{number}-" if len(runs) > 1 else ""
        for plot in rendered:
            (plot_dir / f"{prefix}{plot.name}.png").write_bytes(plot.png)
            if plot.svg is not None:
                (plot_dir / f"{prefix}{plot.name}.svg").write_bytes(plot.svg)
    pairs = [(data, warnings) for data, warnings, _ in runs]
    (out_dir / "summary.md").write_text(summary_markdown(pairs), encoding="utf-8")
    (out_dir / "summary.json").write_bytes(summary_json(pairs))
    html_path = out_dir / "report.html"
    html_path.write_text(report_html(runs), encoding="utf-8")
    return html_path


__all__ = ["build_report"]
