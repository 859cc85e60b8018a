"""`bench run`'s post-processing in process: failures of report/compare never cost the results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bench.present.compare
import bench.present.report
from bench.cli import build_parser
from bench.core import exitcodes
from bench.run import options
from bench.run.execute import Execution
from bench.run.post import finish

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "results" / "v1-small.json"
FIXTURES = ROOT / "tests" / "fixtures" / "run"


def run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reports" / "v1.2.3" / "placeholder-id"
    folder.mkdir(parents=True)
    shutil.copy(SMALL, folder / "results.json")
    return folder


def parse(*argv: str):
    return options(build_parser().parse_args(["run", "--release", "v1.2.3", *argv]), {})


def boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("plot backend exploded\nwith a second line")


def test_report_and_comparison_failures_are_one_line_and_keep_the_results(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(bench.present.report, "build_report", boom)
    monkeypatch.setattr(bench.present.compare, "compare_paths", boom)
    folder = run_folder(tmp_path)
    original = (folder / "results.json").read_bytes()
    opts = parse("--baseline", str(SMALL), "--force", "--thresholds", str(FIXTURES / "fail.toml"))
    lines: list[str] = []
    code = finish(opts, folder, Execution(0, False, folder / "locust.log"), {}, lines.append)
    # The folder now carries the results' own run id; the file is untouched.
    moved = folder.with_name("20261129T080000Z-abc123")
    assert not folder.exists()
    assert (moved / "results.json").read_bytes() == original
    assert lines[:2] == [
        "bench run: problem: report failed: plot backend exploded with a second line",
        "bench run: problem: comparison failed: plot backend exploded with a second line",
    ]
    # A comparison that could not be made outranks the failed thresholds.
    assert code == exitcodes.USAGE
    assert lines[-1].startswith("bench run: exit code 2 (usage error or a verdict")
    summary = (moved / "summary.md").read_text()
    assert "- problem: report failed: plot backend exploded" in summary
    assert "**Thresholds: FAILED**" in summary


def test_without_the_comparison_the_thresholds_decide(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.present.report, "build_report", boom)
    folder = run_folder(tmp_path)
    lines: list[str] = []
    opts = parse("--thresholds", str(FIXTURES / "fail.toml"))
    code = finish(opts, folder, Execution(0, False, folder / "locust.log"), {}, lines.append)
    assert code == exitcodes.THRESHOLDS_FAILED
    assert any(x.startswith("bench run: FAIL ready p95 <= 1 ms, overall: ") for x in lines)


@pytest.mark.parametrize(("child", "expected"), [(12, 12), (1, 16), (-9, 16)])
def test_the_broken_run_code_wins_over_every_verdict(tmp_path, monkeypatch, child, expected):
    monkeypatch.setattr(bench.present.report, "build_report", boom)
    folder = run_folder(tmp_path)
    opts = parse("--thresholds", str(FIXTURES / "fail.toml"), "--baseline", str(SMALL), "--force")
    code = finish(opts, folder, Execution(child, False, folder / "locust.log"), {}, lambda _: None)
    assert code == expected


def test_no_results_file_is_a_broken_run(tmp_path):
    folder = tmp_path / "reports" / "v1.2.3" / "run"
    folder.mkdir(parents=True)
    lines: list[str] = []
    code = finish(parse(), folder, Execution(0, False, folder / "locust.log"), {}, lines.append)
    assert code == 16
    assert lines[0] == f"bench run: problem: results file {folder / 'results.json'} does not exist"
    assert (folder / "summary.md").is_file()


def repeat_folder(set_dir: Path, name: str) -> Path:
    folder = set_dir / name
    folder.mkdir(parents=True)
    shutil.copy(SMALL, folder / "results.json")
    return folder


def test_a_set_of_repeats_writes_one_result_set_report_and_verdict(tmp_path):
    from bench.record.result_set import load_result_set
    from bench.run.post import finish_repeat, finish_set

    set_dir = tmp_path / "reports" / "v1.2.3" / "set-id"
    opts = parse("--repeat", "2", "--thresholds", str(FIXTURES / "fail.toml"))
    lines: list[str] = []
    repeats = []
    for number, name in enumerate(("a", "b"), start=1):
        folder = repeat_folder(set_dir, name)
        execution = Execution(0, False, folder / "locust.log")
        repeats.append(finish_repeat(opts, folder, execution, number, lines.append))
    # The fixture's run id names the first folder; the second keeps its own name.
    assert any(x.startswith("bench run: repeat 1: FAIL ready p95") for x in lines)
    assert any(x.startswith("bench run: repeat 2: FAIL ready p95") for x in lines)
    code = finish_set(opts, set_dir, repeats, {}, lines.append)
    assert code == exitcodes.THRESHOLDS_FAILED  # each repeat must pass its thresholds
    result_set = load_result_set(set_dir / "result-set.json")
    assert len(result_set.run_paths) == 2 and result_set.release == "v1.2.3"
    summary = (set_dir / "summary.md").read_text()
    assert summary.startswith("# Benchmark set `set-id` - release `v1.2.3`, 2 of 2 repeats")
    assert "- repeat 2: `b`, exit code 0 (clean run), thresholds FAILED" in summary
    assert "## Spread between the 2 runs" in (set_dir / "report" / "summary.md").read_text()
    assert f"bench run: result set {set_dir / 'result-set.json'}" in lines


def test_a_broken_repeat_stops_the_set_and_its_code_wins(tmp_path):
    from bench.run.post import finish_repeat, finish_set

    set_dir = tmp_path / "reports" / "v1.2.3" / "set-id"
    opts = parse("--repeat", "3", "--baseline", str(SMALL), "--force")
    good = repeat_folder(set_dir, "a")
    broken = repeat_folder(set_dir, "b")
    repeats = [finish_repeat(opts, good, Execution(0, False, good / "x.log"), 1, lambda _: None),
               finish_repeat(opts, broken, Execution(12, False, broken / "x.log"), 2,
                             lambda _: None)]
    lines: list[str] = []
    assert finish_set(opts, set_dir, repeats, {}, lines.append) == 12
    # The clean repeat still makes a set, compared with the baseline.
    assert (set_dir / "result-set.json").is_file()
    assert (set_dir / "compare" / "compare.md").is_file()
    assert lines[-1].startswith("bench run: exit code 12 (broken run: sessions left alive")
