"""Load each side (a results file or a folder of runs), check comparability, match steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.text import short_repr
from bench.present.compare.errors import CompareError
from bench.record.result_set import FILE_NAME as SET_NAME
from bench.record.result_set import runs_of
from bench.record.results import Results, ResultsError, load_results, step_level

RESULTS_NAME = "results.json"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its runs, in a stable order (by path)."""

    name: str  # "baseline" or "candidate"
    runs: tuple[Results, ...]
    source: str  # what the user gave, for messages

    @property
    def releases(self) -> list[str]:
        return sorted({str(r.run["release"]) for r in self.runs})


def run_files(path: Path) -> list[Path]:
    """The results files one side is made of (see `load_side`); ResultsError if unreadable."""
    if path.is_dir():
        if (path / SET_NAME).is_file():
            return list(runs_of(path / SET_NAME) or ())
        return sorted(path.rglob(RESULTS_NAME))
    if not path.exists():
        raise ResultsError(f"{path} does not exist")
    listed = runs_of(path)
    return [path] if listed is None else list(listed)


def load_side(name: str, path: Path) -> Side:
    """Repeated runs of one release: a results file, a result-set file (result-set.json),
    a folder holding a result-set.json (its runs), or any other folder (every
    results.json under it)."""
    if not path.exists():
        raise CompareError(f"{name} {path} does not exist")
    try:
        files = run_files(path)
    except ResultsError as exc:
        raise CompareError(f"{name}: {exc}") from None
    if not files:
        raise CompareError(f"{name} folder {path} holds no {RESULTS_NAME}")
    runs = []
    for file in files:
        try:
            runs.append(load_results(file))
        except ResultsError as exc:
            raise CompareError(f"{name}: {exc}") from None
    return Side(name, tuple(runs), str(path))


# What must be equal for two runs to measure the same thing.  The simulator profile
# and the release are exactly what a comparison is meant to vary, so they are not here.
COMPARABILITY_KEYS: tuple[tuple[str, Callable[[Results], Any]], ...] = (
    ("session config", lambda r: r.config.get("session_config")),
    ("poll interval", lambda r: r.config.get("poll_interval_s")),
    ("scenario version", lambda r: r.config.get("scenario_version")),
    ("target kind", lambda r: r.run["target"].get("kind")),
    # Open and closed runs load a target in different ways: their levels (arrival rate,
    # concurrency) are not the same axis.  Arrivals' kind changes what a rate means.
    ("load model", lambda r: _model(r)),
)


def _model(results: Results) -> str:
    model = results.config.get("model")
    if not isinstance(model, Mapping) or model.get("kind") != "open":
        return "closed"
    return f"open ({model.get('arrivals')} arrivals)"


def comparability_problems(baseline: Side, candidate: Side) -> list[str]:
    """Reasons the two sides (and the runs within each side) do not measure the same thing."""
    problems = []
    for what, key in COMPARABILITY_KEYS:
        for side in (baseline, candidate):
            values = {short_repr(key(r)) for r in side.runs}
            if len(values) > 1:
                problems.append(f"{side.name} runs differ in {what} ({', '.join(sorted(values))})")
        base, cand = key(baseline.runs[0]), key(candidate.runs[0])
        if base != cand:
            problems.append(
                f"{what} differs (baseline {short_repr(base)}, candidate {short_repr(cand)})"
            )
    return problems


def check_comparable(baseline: Side, candidate: Side, *, force: bool) -> list[str]:
    """Raise CompareError naming the first reason unless forced; returns the reasons."""
    problems = comparability_problems(baseline, candidate)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CompareError(
            f"not comparable: {problems[0]}{more}; use --force to compare anyway"
        )
    return problems


def steps_by_level(results: Results) -> dict[float, list[Mapping[str, Any]]]:
    """The run's steps grouped by level: target concurrency, or the open model's arrival
    rate (a ladder may visit a level twice)."""
    out: dict[float, list[Mapping[str, Any]]] = {}
    for step in results.steps:
        out.setdefault(step_level(step), []).append(step)
    return out


@dataclass(frozen=True)
class LevelMatch:
    """Which target concurrencies both sides measured, and which only one did."""

    both: tuple[int, ...]
    baseline_only: tuple[int, ...]
    candidate_only: tuple[int, ...]


def match_levels(baseline: Sequence[Results], candidate: Sequence[Results]) -> LevelMatch:
    """Levels present in every run of a side count for that side (a run without one is short)."""

    def levels(runs: Sequence[Results]) -> set[float]:
        sets = [set(steps_by_level(r)) for r in runs]
        return set.intersection(*sets) if sets else set()

    base, cand = levels(baseline), levels(candidate)
    return LevelMatch(
        both=tuple(sorted(base & cand)),
        baseline_only=tuple(sorted(base - cand)),
        candidate_only=tuple(sorted(cand - base)),
    )
