"""`bench compare BASELINE CANDIDATE [-o DIR]`: arguments, validated options, run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UsageError
from bench.present.compare.errors import CompareError


@dataclass(frozen=True)
class CompareOptions:
    baseline: Path
    candidate: Path
    out_dir: Path | None
    thresholds: Path | None
    force: bool


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", metavar="BASELINE",
                   help="results.json, or a folder of repeated runs (every results.json in it)")
    p.add_argument("candidate", metavar="CANDIDATE", help="the same, for the candidate release")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="write compare.md, compare.html and compare.json here")
    p.add_argument("--thresholds", metavar="FILE", default=None,
                   help="TOML file: alpha, thresholds per metric and percentile, SLO "
                   "(docs/compare.md)")
    p.add_argument("--force", action="store_true",
                   help="compare even when the runs are not comparable (noted in the outputs)")


def options(args: argparse.Namespace, environ: Mapping[str, str]) -> CompareOptions:
    del environ  # nothing secret or configurable from the environment
    return CompareOptions(
        baseline=Path(args.baseline),
        candidate=Path(args.candidate),
        out_dir=None if args.out is None else Path(args.out),
        thresholds=None if args.thresholds is None else Path(args.thresholds),
        force=bool(args.force),
    )


def run(opts: CompareOptions) -> int:
    """Compare, print the Markdown to stdout; exit 0 (no regression) or 1 (regression)."""
    from bench.present.compare import compare_paths, render_markdown

    try:
        comparison = compare_paths(
            opts.baseline, opts.candidate, opts.out_dir,
            thresholds=opts.thresholds, force=opts.force,
        )
    except CompareError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(render_markdown(comparison))
    return comparison.exit_code
