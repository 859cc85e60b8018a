"""The versioned result-set file: one release's repeated runs, each an unchanged results.json.

A result set names the runs that measured one release under one configuration
(`bench run --repeat N` writes one; `bench gather` makes one from existing runs), so
a comparison or a report can tell run-to-run variance from a change.  It points at
each run's results file by a path relative to its own folder (the set and its runs
move together); it never copies or changes them.

    {"format": "async-session-bench/result-set", "version": 1,
     "release": "v1.4.0", "created_at": "2026-11-30T12:00:00+00:00",
     "runs": [{"path": "20261130T120313Z-0d3c34/results.json", "run_id": "20261130T..."}]}
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.core.text import short_repr
from bench.record.results import ResultsError, load_results, write_results
from bench.record.userfiles import read_bytes, type_name

FORMAT = "async-session-bench/result-set"
# Format versions (bump for any change a reader must know about; refuse newer ones):
# 1 - first release: release, created_at, runs [{path, run_id}], paths relative to the
#     set file's folder.
VERSION = 1
FILE_NAME = "result-set.json"


class ResultSetError(ResultsError):
    """A result-set file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class ResultSet:
    """A loaded, validated result set: the runs' results files, resolved."""

    path: Path
    release: str
    created_at: str
    run_paths: tuple[Path, ...]
    run_ids: tuple[str, ...]


def build_set_document(
    folder: Path, release: str, runs: Sequence[tuple[Path, str]], created_at: str | None = None
) -> dict[str, Any]:
    """The document of a set in `folder` holding the (results path, run id) pairs."""
    if not runs:
        raise ResultSetError("a result set needs at least one run")
    return {
        "format": FORMAT,
        "version": VERSION,
        "release": release,
        "created_at": created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": [
            {"path": Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix(),
             "run_id": run_id}
            for path, run_id in runs
        ],
    }


def write_result_set(folder: Path, release: str, results_paths: Sequence[Path]) -> Path:
    """Validate every run (loadable results files), then write folder/result-set.json."""
    runs = []
    for path in results_paths:
        results = load_results(path)
        runs.append((Path(path), str(results.run["id"])))
    target = Path(folder) / FILE_NAME
    # The results file's writer: atomic, sorted keys, indented (any JSON document).
    write_results(target, build_set_document(Path(folder), release, runs))
    return target


def _fail(label: str, message: str) -> ResultSetError:
    return ResultSetError(f"{label}: {message}")


def parse_result_set(data: bytes, path: Path) -> ResultSet:
    """Check a result-set document (pure apart from resolving paths against its folder)."""
    label = f"result set {path}"
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResultSetError(f"{label} is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else f"JSON {type_name(doc)}"
        raise _fail(label, f"not a result set (format {short_repr(found, 40)}, "
                    f"expected {FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail(label, f"format version must be an integer, got {short_repr(version, 40)}")
    if version > VERSION:
        raise ResultSetError(
            f"{label} was written by a newer harness (format version {version} > {VERSION}); "
            "upgrade async-session-bench"
        )
    if version < 1:
        raise _fail(label, f"format version {version} is not supported")
    release = doc.get("release")
    created = doc.get("created_at")
    runs = doc.get("runs")
    if not isinstance(release, str):
        raise _fail(label, f"release must be a string, got {short_repr(release, 40)}")
    if not isinstance(created, str):
        raise _fail(label, f"created_at must be a string, got {short_repr(created, 40)}")
    if not isinstance(runs, list) or not runs:
        raise _fail(label, "runs must be a non-empty list")
    paths, ids = [], []
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise _fail(label, f"runs[{i}] must be an object, got {type_name(run)}")
        rel, run_id = run.get("path"), run.get("run_id")
        if not isinstance(rel, str) or not rel:
            raise _fail(label, f"runs[{i}].path must be a non-empty string")
        if not isinstance(run_id, str):
            raise _fail(label, f"runs[{i}].run_id must be a string")
        resolved = (path.parent / rel).resolve()
        if resolved in paths:
            raise _fail(label, f"runs[{i}] repeats {short_repr(rel, 60)}")
        paths.append(resolved)
        ids.append(run_id)
    return ResultSet(path, release, created, tuple(paths), tuple(ids))


def load_result_set(path: str | os.PathLike[str]) -> ResultSet:
    """Read and validate a result-set file; every problem is a one-line ResultSetError."""
    path = Path(path)
    return parse_result_set(read_bytes(path, "result set", ResultSetError), path)


def runs_of(path: str | os.PathLike[str]) -> tuple[Path, ...] | None:
    """The runs of a result-set file, or None when `path` is some other file."""
    path = Path(path)
    data = read_bytes(path, "file", ResultSetError)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return parse_result_set(data, path).run_paths
    return None


__all__ = [
    "FILE_NAME",
    "FORMAT",
    "VERSION",
    "ResultSet",
    "ResultSetError",
    "build_set_document",
    "load_result_set",
    "parse_result_set",
    "runs_of",
    "write_result_set",
]
