"""The load generator watches itself (issue 11): a starved worker is named, an idle one is not.

The harness's Locust process is pinned to one core; the simulator runs apart, unpinned.
Beside the harness, on the same core, four busy loops take most of its CPU time: its
polls then leave late, and the results and the report must say that step was measured
by a saturated generator, naming the fix.  Without them, nothing is said.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from locust_runs import ROOT, locust_command

from bench.present.report.data import run_data
from bench.present.report.warnings import warnings_for
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-generator-health-4f02"
HOGS = 4
pytestmark = [pytest.mark.slow, pytest.mark.serial]


def _run(out: Path, hogs: int) -> dict:
    with SimulatorProcess("fast", seed=2, truth=True, api_key=KEY) as sim:
        busy = [
            subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
            for _ in range(hogs)
        ]
        try:
            proc = subprocess.run(
                ["taskset", "-c", "0", *locust_command(
                    "--headless", "--only-summary", "--host", sim.url, "--ladder", "8",
                    "--step-time", "4", "--settle", "0.5", "--poll-interval", "0.2",
                    "--no-report", "--results-dir", str(out),
                )],
                cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY}, capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
        finally:
            for hog in busy:
                hog.kill()
                hog.wait()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"results": load_results(out / "results.json")}


def test_a_starved_generator_is_named_with_the_fix(tmp_path):
    results = _run(tmp_path / "run", HOGS)["results"]
    (step,) = results.steps
    # A tenth of the 0.2 s interval: 20 ms.  Four busy loops on the core cost far more.
    assert step["generator"]["saturated"] is True
    assert step["generator"]["poll_lag_p99_us"] > 20_000
    warnings = {w.code: w for w in warnings_for(run_data(results))}
    assert "saturated-generator" in warnings
    fix = warnings["saturated-generator"].fix
    assert "--processes" in fix and "--poll-interval" in fix
    # The process's CPU and the event loop's lateness were recorded alongside.
    assert results.merged("cpu").get_total_count() > 0
    assert results.merged("loop_lag").get_total_count() > 0


def test_an_idle_generator_is_not_accused(tmp_path):
    results = _run(tmp_path / "run", 0)["results"]
    (step,) = results.steps
    assert step["generator"]["saturated"] is False
    assert "saturated-generator" not in {w.code for w in warnings_for(run_data(results))}
