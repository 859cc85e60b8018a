"""Results files -> report.html (plots embedded), plots/*.png, summary.md and summary.json.

Modules, one job each: `data` (results -> plain numbers), `warnings` (doubts and
their fixes), `tables` (the wording), `figures` (matplotlib), `html`, `markdown`,
`summary_json` (renderers), `build` (files in, files out), `command` (the CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.analyse.capacity import SLO


def build_report(paths: Sequence[Path], out_dir: Path, *, slo: SLO | None = None) -> Path:
    """Write the report for `paths` into `out_dir`; returns report.html's path.

    Raises bench.record.results.ResultsError (one-line message) for a missing, malformed,
    foreign or newer results file.  Imported lazily: matplotlib costs about half a
    second, which `bench --help` and the Locust plugin's start-up should not pay.
    """
    from bench.present.report.build import build_report as build

    return build(paths, out_dir, slo=slo)


__all__ = ["build_report"]
