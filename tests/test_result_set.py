"""The result-set file (repeated runs of one release): write, load, refuse; bench gather; the
comparison and the report reading a set; bench run --repeat's options and set verdict."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import orjson
import pytest

from bench.cli import main
from bench.core import exitcodes
from bench.present.compare import CompareError, compare_paths, load_side
from bench.present.compare.synthetic import ready_times, synthetic_results
from bench.present.report import build_report
from bench.record.result_set import (
    FILE_NAME,
    FORMAT,
    VERSION,
    ResultSetError,
    load_result_set,
    write_result_set,
)
from bench.record.results import dumps

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "results" / "v2-small.json"


def write_run(folder: Path, run_id: str, release: str = "v1", seed: int = 0, **config) -> Path:
    rng = random.Random(seed)
    results = synthetic_results(
        {level: {"ready": ready_times(rng, 30), "poll": [3000.0 + i for i in range(30)]}
         for level in (1, 2)},
        release=release, run_id=run_id, config=config or None,
    )
    path = folder / run_id / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(results.document))
    return path


def test_write_and_load_round_trip_with_relative_paths(tmp_path):
    runs = [write_run(tmp_path / "set", f"r{i}", seed=i) for i in range(3)]
    path = write_result_set(tmp_path / "set", "v1", runs)
    assert path == tmp_path / "set" / FILE_NAME
    doc = orjson.loads(path.read_bytes())
    assert (doc["format"], doc["version"], doc["release"]) == (FORMAT, VERSION, "v1")
    assert [r["path"] for r in doc["runs"]] == [f"r{i}/results.json" for i in range(3)]
    assert [r["run_id"] for r in doc["runs"]] == ["r0", "r1", "r2"]
    # The set and its runs move together: paths are relative to the set's folder.
    shutil.move(tmp_path / "set", tmp_path / "moved")
    loaded = load_result_set(tmp_path / "moved" / FILE_NAME)
    assert loaded.run_paths == tuple((tmp_path / "moved" / f"r{i}" / "results.json").resolve()
                                     for i in range(3))
    # Each run's results file is untouched: a normal results document.
    assert all(p.read_bytes().startswith(b"{") for p in loaded.run_paths)


def test_refuses_newer_versions_and_malformed_sets_in_one_line(tmp_path):
    path = tmp_path / FILE_NAME
    base = {"format": FORMAT, "version": 1, "release": "v1", "created_at": "x",
            "runs": [{"path": "a/results.json", "run_id": "a"}]}
    cases = [
        ({**base, "version": VERSION + 1}, "written by a newer harness"),
        ({**base, "version": "1"}, "format version must be an integer"),
        ({**base, "runs": []}, "runs must be a non-empty list"),
        ({**base, "runs": [{"path": 3, "run_id": "a"}]}, r"runs\[0\]\.path"),
        ({**base, "runs": [base["runs"][0], base["runs"][0]]}, r"runs\[1\] repeats"),
        ({**base, "format": "async-session-bench/results"}, "not a result set"),
    ]
    for doc, message in cases:
        path.write_bytes(orjson.dumps(doc))
        with pytest.raises(ResultSetError, match=message) as info:
            load_result_set(path)
        assert "\n" not in str(info.value)
    path.write_text("{")
    with pytest.raises(ResultSetError, match="is not JSON"):
        load_result_set(path)


def test_a_comparison_reads_a_set_file_or_its_folder(tmp_path):
    runs = [write_run(tmp_path / "set", f"r{i}", seed=i) for i in range(3)]
    write_run(tmp_path / "set", "stray", seed=9)  # under the folder, not in the set
    write_result_set(tmp_path / "set", "v1", runs)
    for given in (tmp_path / "set", tmp_path / "set" / FILE_NAME):
        assert load_side("baseline", given).runs[0].run["id"] == "r0"
        assert [r.run["id"] for r in load_side("baseline", given).runs] == ["r0", "r1", "r2"]
    comparison = compare_paths(tmp_path / "set", runs[0], None)
    assert comparison.mode == "runs"
    (tmp_path / "set" / "r1" / "results.json").unlink()
    with pytest.raises(CompareError, match=r"baseline: results file .*r1.* does not exist"):
        load_side("baseline", tmp_path / "set")


def test_bench_gather_cli(tmp_path, capsys):
    runs = [write_run(tmp_path / "runs", f"r{i}", seed=i) for i in range(2)]
    assert main(["gather", str(tmp_path / "set"), str(tmp_path / "runs")]) == 0
    assert "2 runs of v1" in capsys.readouterr().out
    assert load_result_set(tmp_path / "set" / FILE_NAME).run_paths == tuple(
        p.resolve() for p in runs)
    write_run(tmp_path / "other", "x", release="v2")
    assert main(["gather", str(tmp_path / "mixed"), str(tmp_path / "runs"),
                 str(tmp_path / "other")]) == exitcodes.USAGE
    assert "several releases (v1, v2)" in capsys.readouterr().err
    write_run(tmp_path / "slow", "y", poll_interval_s=0.5)
    assert main(["gather", str(tmp_path / "bad"), str(tmp_path / "runs"), str(tmp_path / "slow"),
                 "--release", "v1"]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("Error: not one configuration: set runs differ in poll interval")
    assert err.count("\n") == 1
    assert main(["gather", str(tmp_path / "none"), str(tmp_path / "nope")]) == exitcodes.USAGE


def test_report_of_a_set_shows_the_spread_between_runs(tmp_path):
    runs = [write_run(tmp_path / "set", f"r{i}", seed=i) for i in range(3)]
    set_file = write_result_set(tmp_path / "set", "v1", runs)
    build_report([set_file], tmp_path / "out")
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Spread between the 3 runs" in summary
    line = next(x for x in summary.splitlines() if x.startswith("| all | ready | p50 |"))
    assert "| 3 |" in line
    assert "Spread between the 3 runs" in (tmp_path / "out" / "report.html").read_text()
    # From the command line, the set's folder: the report lands in it.
    assert main(["report", str(tmp_path / "set")]) == 0
    assert "## Spread between the 3 runs" in (tmp_path / "set" / "summary.md").read_text()
    # One run: no spread section.
    build_report([runs[0]], tmp_path / "one")
    assert "Spread" not in (tmp_path / "one" / "summary.md").read_text()


def test_repeat_option(tmp_path, capsys):
    from bench.cli import build_parser
    from bench.run import options

    def parse(*argv: str):
        return options(build_parser().parse_args(["run", *argv]), {})

    assert parse().repeat == 1
    assert parse("--repeat", "3").repeat == 3
    for bad in ("0", "1.5", "x", "101"):
        assert main(["run", "--repeat", bad]) == exitcodes.USAGE
        assert capsys.readouterr().err.startswith("Error: --repeat must be")
