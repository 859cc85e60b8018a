"""`bench run` end to end: real Locust runs of a short ladder against the embedded simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from locust_runs import free_port, locust_workers

from bench.core import exitcodes
from bench.record.results import load_results

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "run"
KEY = "canary-key-7f3a9c1e-never-print"

pytestmark = pytest.mark.slow

# Two 2-second steps on the fast profile (time x0.02): about 100 journeys, 8-10 s a run.
SHORT = (
    "--ladder", "1,2",
    "--step-time", "2",
    "--settle", "0.2",
    "--poll-interval", "0.02",
    "--ready-timeout", "5",
    "--progress-interval", "0.5",
)  # fmt: skip


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    folder: Path | None  # reports/<release>/<run-id>/
    step_summary: Path

    @property
    def summary(self) -> str:
        assert self.folder is not None
        return (self.folder / "summary.md").read_text()


def bench_run(reports: Path, release: str, *args: str, env: dict | None = None) -> Run:
    step_summary = reports / f"github-step-summary-{release}.md"
    environ = {**os.environ, "ANCHOR_API_KEY": KEY, "GITHUB_STEP_SUMMARY": str(step_summary),
               **(env or {})}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--reports-dir", str(reports),
         "--release", release, *args],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    folders = sorted((reports / release).glob("*/results.json"))
    assert len(folders) <= 1
    assert KEY not in proc.stdout and KEY not in proc.stderr
    return Run(proc, folders[0].parent if folders else None, step_summary)


def assert_key_never_written(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def failure(run: Run) -> str:
    return run.proc.stdout[-3000:] + run.proc.stderr[-2000:]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def baseline(reports) -> Run:
    """A clean run on the fast profile with thresholds it meets: exit 0 (and the baseline)."""
    return bench_run(reports, "base", *SHORT, "--sim-profile", "fast",
                     "--thresholds", str(FIXTURES / "pass.toml"))  # fmt: skip


def test_one_command_writes_the_whole_run_folder(baseline, reports):
    assert baseline.proc.returncode == exitcodes.OK, failure(baseline)
    folder = baseline.folder
    assert folder is not None
    results = load_results(folder / "results.json")
    # The folder is named after the run id the results carry.
    assert folder.name == results.run["id"] and folder.parent.name == "base"
    assert results.run["release"] == "base"
    assert [s["target_concurrency"] for s in results.steps] == [1, 2]
    assert results.totals["outcomes"]["ready"] > 0
    for name in ("hlog/ready.hlog", "locust_stats.csv", "locust_stats_history.csv",
                 "locust.log", "report/report.html", "report/summary.md", "summary.md"):
        assert (folder / name).is_file(), name  # fmt: skip
    # Locust's output went through to ours, progress lines included, and into the log.
    out = baseline.proc.stdout
    assert "progress: step 1/2 (1 concurrent)" in out
    assert "Response time percentiles" in out
    assert "progress: step" in (folder / "locust.log").read_text()
    assert out.splitlines()[-1] == "bench run: exit code 0 (all clear; run: clean run)"
    summary = baseline.summary
    assert summary.startswith(f"# Benchmark `{folder.name}` - release `base`")
    assert "**Verdict: exit code 0 - all clear**" in summary
    report_title = (folder / "report" / "summary.md").read_text().splitlines()[0]
    assert "#" + report_title in summary  # the report's summary, nested one level down
    # pass.toml: ready p95 at each of 2 steps, the failure rate, the capacity.
    assert "**Thresholds: passed** - all 4 checks within their limits" in summary
    assert baseline.step_summary.read_text() == summary + "\n"
    assert_key_never_written(folder)


def test_same_profile_baseline_is_no_regression(baseline, reports):
    assert baseline.folder is not None
    run = bench_run(reports, "same", *SHORT, "--sim-profile", "fast",
                    "--baseline", str(baseline.folder),
                    "--compare-thresholds", str(FIXTURES / "compare.toml"))  # fmt: skip
    assert run.proc.returncode == exitcodes.OK, failure(run)
    assert "bench run: comparison: no regression (exit code 0)" in run.proc.stdout
    assert "## Comparison with the baseline" in run.summary
    assert run.folder is not None and (run.folder / "compare" / "compare.md").is_file()


def test_much_slower_candidate_is_a_regression(baseline, reports):
    assert baseline.folder is not None
    # A release folder as baseline: every results.json under it is a baseline run.
    run = bench_run(reports, "slow", *SHORT, "--sim-profile", str(FIXTURES / "slow.toml"),
                    "--baseline", str(baseline.folder.parent),
                    "--compare-thresholds", str(FIXTURES / "compare.toml"))  # fmt: skip
    assert run.proc.returncode == exitcodes.REGRESSION, failure(run)
    assert "bench run: comparison: regression (exit code 1)" in run.proc.stdout
    assert "**Verdict: exit code 1 - regression against the baseline**" in run.summary


def test_repeats_make_one_result_set_report_and_verdict(baseline, reports):
    """--repeat 2: two run folders in one set folder, result-set.json naming both, one
    report with the spread between them, the set compared with the baseline."""
    assert baseline.folder is not None
    environ = {**os.environ, "ANCHOR_API_KEY": KEY}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--reports-dir", str(reports),
         "--release", "rep", *SHORT, "--sim-profile", "fast", "--repeat", "2",
         "--thresholds", str(FIXTURES / "pass.toml"), "--baseline", str(baseline.folder),
         "--compare-thresholds", str(FIXTURES / "compare.toml")],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == exitcodes.OK, proc.stdout[-3000:] + proc.stderr[-2000:]
    [set_dir] = [p for p in (reports / "rep").iterdir() if p.is_dir()]
    runs = sorted(set_dir.glob("*/results.json"))
    assert len(runs) == 2
    from bench.record.result_set import load_result_set

    assert load_result_set(set_dir / "result-set.json").run_paths == tuple(
        p.resolve() for p in runs)
    assert "## Spread between the 2 runs" in (set_dir / "report" / "summary.md").read_text()
    compared = (set_dir / "compare" / "compare.md").read_text()
    assert "1 baseline and 2 candidate run(s)" in compared
    assert "bench run: repeat 2 of 2" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "bench run: exit code 0 (all clear; run: 2 clean runs)"
    summary = (set_dir / "summary.md").read_text()
    assert "- repeat 1: " in summary and "thresholds passed" in summary
    assert_key_never_written(set_dir)


def test_thresholds_fail_with_two_processes(reports):
    run = bench_run(reports, "procs", *SHORT, "--sim-profile", "fast", "--processes", "2",
                    "--thresholds", str(FIXTURES / "fail.toml"))  # fmt: skip
    assert run.proc.returncode == exitcodes.THRESHOLDS_FAILED, failure(run)
    assert run.folder is not None
    results = load_results(run.folder / "results.json")
    assert results.run["workers"] == 2
    assert results.totals["invariant_ok"]
    # Which limit failed and by how much, on the console and in the summary.
    line = next(x for x in run.proc.stdout.splitlines() if x.startswith("bench run: FAIL"))
    assert line.startswith("bench run: FAIL ready p95 <= 1 ms, overall: ")
    assert ", over by " in line
    # fail.toml: ready p95 overall fails; create p50 at each of the 2 steps passes.
    assert "bench run: thresholds: 2 of 3 checks passed" in run.proc.stdout
    summary = run.summary
    assert "**Verdict: exit code 3 - SLO thresholds failed**" in summary
    assert "| **FAIL** | ready p95 <= 1 ms | overall |" in summary


def test_a_broken_run_wins_and_keeps_its_results(baseline, reports):
    port = free_port()  # nothing listens there once the probe socket is closed
    assert baseline.folder is not None
    run = bench_run(reports, "broken", "--ladder", "1", "--step-time", "1", "--settle", "0.1",
                    "--poll-interval", "0.02", "--ready-timeout", "2",
                    "--host", f"http://127.0.0.1:{port}",
                    "--thresholds", str(FIXTURES / "fail.toml"),
                    "--baseline", str(baseline.folder), "--force")  # fmt: skip
    assert run.proc.returncode == exitcodes.TARGET_UNREACHABLE, failure(run)
    assert run.folder is not None
    results = load_results(run.folder / "results.json")
    assert results.totals["outcomes"]["create_error"] == results.totals["journeys"] > 0
    assert "**Verdict: exit code 10 - broken run: target unreachable**" in run.summary
    assert_key_never_written(run.folder)


def test_master_with_external_workers_as_in_the_deployments(reports, tmp_path):
    # The commands of deploy/docker-compose.yml and deploy/k8s: `bench run
    # --expect-workers N` on the master, `locust --worker` on each worker.
    port = free_port()
    with locust_workers(port, tmp_path, key=KEY) as workers:
        run = bench_run(reports, "workers", *SHORT, "--sim-profile", "fast",
                        "--expect-workers", "2", "--master-bind-port", str(port))  # fmt: skip
    assert run.proc.returncode == exitcodes.OK, failure(run)
    assert [w.returncode for w in workers] == [0, 0]
    assert run.folder is not None
    results = load_results(run.folder / "results.json")
    assert results.run["workers"] == 2
    assert results.totals["invariant_ok"] and results.totals["outcomes"]["ready"] > 0


def test_sigterm_keeps_the_partial_run_and_exits_143(reports):
    # A ladder far longer than the test: only the signal ends it.  We wait for the
    # harness's first progress line (the run is under way) by reading the output;
    # the child's own watchdog and the test timeout bound that wait.
    command = [sys.executable, "-m", "bench", "run", "--reports-dir", str(reports),
               "--release", "sigterm", "--ladder", "2", "--step-time", "600", "--settle", "0.2",
               "--poll-interval", "0.02", "--ready-timeout", "5", "--progress-interval", "0.5",
               "--sim-profile", "fast", "--no-report",
               "--thresholds", str(FIXTURES / "pass.toml")]  # fmt: skip
    environ = {**os.environ, "ANCHOR_API_KEY": KEY}
    with subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "progress: step 1/1" in line:
                proc.terminate()  # SIGTERM to `bench run` only, as a CI runner would
                break
        seen += proc.stdout.readlines()
        proc.wait(timeout=120)
    out = "".join(seen)
    assert proc.returncode == 143, out[-3000:]
    (results_file,) = (reports / "sigterm").glob("*/results.json")
    results = load_results(results_file)
    assert results.run["end_reason"] == "interrupted"
    assert results.totals["outcomes"]["ready"] > 0
    summary = (results_file.parent / "summary.md").read_text()
    assert "**Verdict: exit code 143 - interrupted by signal 15**" in summary
    assert "**Thresholds: passed**" in summary  # the partial run is still evaluated
    assert out.splitlines()[-1] == (
        "bench run: exit code 143 (interrupted by signal 15: the partial run's results are kept)"
    )
