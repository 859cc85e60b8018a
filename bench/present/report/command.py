"""`bench report`: arguments -> validated options -> build_report.  Imports nothing heavy."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.analyse.capacity import DEFAULT_FAILURE_RATE_LIMIT, DEFAULT_READY_LIMIT_S, SLO
from bench.core.durations import parse_duration
from bench.core.errors import UsageError

HELP = "turn results files into report.html, PNG plots, summary.md and summary.json"


def _duration(text: str) -> float:
    """Seconds, plain or as Locust writes durations (5, 5s, 1500ms)."""
    return parse_duration(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                   help="results file(s) written by a run (results.json), or a result set "
                   "(result-set.json or its folder: every repeat, with their spread)")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                   help="where to write the report (default: the results file's folder; "
                   "required with several results files)")
    p.add_argument("--slo-ready-p95", type=_duration, default=DEFAULT_READY_LIMIT_S,
                   metavar="SECONDS",
                   help="SLO limit on the 95th percentile of time to ready "
                   "(default %(default)g s)")
    p.add_argument("--slo-failure-rate", type=float, default=DEFAULT_FAILURE_RATE_LIMIT,
                   metavar="FRACTION",
                   help="SLO limit on failed / decided journeys, e.g. 0.01 for 1 %% "
                   "(default %(default)g)")


@dataclass(frozen=True)
class ReportOptions:
    results: tuple[Path, ...]
    output: Path
    slo: SLO


def options(args: argparse.Namespace, environ: Mapping[str, str]) -> ReportOptions:

    del environ  # the report reads no environment
    ready = args.slo_ready_p95
    if not (math.isfinite(ready) and ready > 0):
        raise UsageError(f"--slo-ready-p95 must be a number of seconds > 0, got {ready:g}")
    rate = args.slo_failure_rate
    if not (math.isfinite(rate) and 0 <= rate <= 1):
        raise UsageError(
            f"--slo-failure-rate must be a fraction between 0 and 1 (0.01 = 1 %), got {rate:g}"
        )
    paths = tuple(args.results)
    if args.output is None and len(paths) > 1:
        raise UsageError("-o DIR is required when reporting several results files")
    first = paths[0]
    output = args.output if args.output is not None else (
        first if first.is_dir() else first.parent)
    return ReportOptions(paths, output, SLO(ready_limit_s=ready, failure_rate_limit=rate))


def run(opts: ReportOptions) -> int:
    from bench.present.report import build_report
    from bench.record.results import ResultsError

    try:
        path = build_report(opts.results, opts.output, slo=opts.slo)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the report to {opts.output}: {exc.strerror}") from None
    print(f"report: {path}", file=sys.stdout)
    return 0


__all__ = ["HELP", "ReportOptions", "add_arguments", "options", "run"]
