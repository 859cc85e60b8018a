"""`bench gather DIR RESULTS...`: existing runs of one release into a result set."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UsageError

HELP = "gather existing runs of one release into a result set (for compare and report)"


@dataclass(frozen=True)
class GatherOptions:
    out_dir: Path
    results: tuple[Path, ...]
    release: str | None
    force: bool


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", metavar="DIR",
                   help="where result-set.json is written (its runs are named relative to it)")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                   help="results.json files, or folders (every results.json under them)")
    p.add_argument("--release", default=None, metavar="LABEL",
                   help="the set's release label (default: the runs' own, when they share one)")
    p.add_argument("--force", action="store_true",
                   help="gather runs that differ in what a comparison requires to be equal")


def options(args: argparse.Namespace, environ: Mapping[str, str]) -> GatherOptions:
    del environ
    return GatherOptions(Path(args.out_dir), tuple(args.results), args.release, bool(args.force))


def run(opts: GatherOptions) -> int:
    from bench.present.compare.errors import CompareError
    from bench.present.compare.inputs import Side, comparability_problems, load_side
    from bench.record.result_set import FILE_NAME, ResultSetError, write_result_set
    from bench.record.results import ResultsError

    runs = []
    paths: list[Path] = []
    for given in opts.results:
        try:
            side = load_side("run", given)
        except CompareError as exc:
            raise UsageError(str(exc)) from None
        for results in side.runs:
            assert results.path is not None
            if results.path.resolve() not in paths:
                paths.append(results.path.resolve())
                runs.append(results)
    releases = sorted({str(r.run["release"]) for r in runs})
    release = opts.release
    if release is None:
        if len(releases) > 1:
            raise UsageError(f"the runs have several releases ({', '.join(releases)}); "
                             "name the set's with --release")
        release = releases[0]
    whole = Side("set", tuple(runs), "gathered")
    problems = [p for p in comparability_problems(whole, whole) if p.startswith("set runs")]
    if problems and not opts.force:
        raise UsageError(f"not one configuration: {problems[0]}; use --force to gather anyway")
    try:
        path = write_result_set(opts.out_dir, release, paths)
    except (ResultSetError, ResultsError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {opts.out_dir / FILE_NAME}: {exc.strerror}") from None
    print(f"result set: {path} ({len(paths)} runs of {release})", file=sys.stdout)
    return 0


__all__ = ["HELP", "GatherOptions", "add_arguments", "options", "run"]
