"""Release-to-release comparison: baseline vs candidate results -> verdicts, reports, exit code.

Public API::

    compare_paths(baseline, candidate, out_dir, *, thresholds=None, force=False) -> Comparison
    compare_sides(...)            # pure, on loaded sides
    CompareError                  # usage/input problem (ValueError, one-line message)
"""

from __future__ import annotations

from pathlib import Path

from bench.present.compare.analysis import Comparison, Row, compare_sides
from bench.present.compare.errors import CompareError
from bench.present.compare.inputs import Side, check_comparable, load_side
from bench.present.compare.limits import Thresholds, load_thresholds
from bench.present.compare.markdown import render_markdown

OUTPUT_NAMES = ("compare.md", "compare.html", "compare.json")


def compare_paths(
    baseline: Path,
    candidate: Path,
    out_dir: Path | None,
    *,
    thresholds: Path | None = None,
    force: bool = False,
) -> Comparison:
    """Load both sides, refuse what is not comparable (unless `force`), compare, write outputs.

    Writes compare.md, compare.html and compare.json into `out_dir` when given.
    Raises CompareError (one line) for missing, malformed or incomparable inputs.
    """
    settings = load_thresholds(Path(thresholds)) if thresholds is not None else Thresholds()
    base = load_side("baseline", Path(baseline))
    cand = load_side("candidate", Path(candidate))
    problems = check_comparable(base, cand, force=force)
    notes = [f"forced although not comparable: {p}" for p in problems]
    comparison = compare_sides(base, cand, settings, notes)
    if out_dir is not None:
        write_outputs(comparison, Path(out_dir))
    return comparison


def write_outputs(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Markdown, HTML (plots embedded) and JSON into `out_dir`; returns the paths."""
    from bench.present.compare.html import render_html
    from bench.present.compare.jsondoc import render_json

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        md, page, doc = (out_dir / name for name in OUTPUT_NAMES)
        md.write_text(render_markdown(comparison), encoding="utf-8")
        page.write_text(render_html(comparison), encoding="utf-8")
        doc.write_bytes(render_json(comparison))
    except OSError as exc:
        raise CompareError(f"cannot write to {out_dir}: {exc.strerror}") from None
    return [md, page, doc]


__all__ = [
    "CompareError",
    "Comparison",
    "Row",
    "Side",
    "Thresholds",
    "compare_paths",
    "compare_sides",
    "load_side",
    "render_markdown",
    "write_outputs",
]
