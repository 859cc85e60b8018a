"""The load generator watches itself (issue 11): a starved worker is named, an idle one is not.

The harness's Locust process runs on one core; the simulator runs apart, unpinned.
From the step's start to the ladder's end, the starved run's Locust process may use
only 10 % of a core (a CFS bandwidth quota on its own cgroup: 10 ms of every 100 ms),
while a 32-user step at a 0.2 s interval needs several times that: its polls then leave
late through the whole step, measured journeys included, and the results and the report
must say the step was measured by a saturated generator, naming the fix.  The idle run
is the same run without the quota, and nothing is said.

Why a quota and not busy loops beside it: this kernel (EEVDF) serves a process that
mostly sleeps soon after each wake-up, even beside busy loops at normal or real-time
priority, so such hogs starve the generator only by chance (tried: four nice-0 loops
left the measured polls' lag p99 at 2 ms; a SCHED_FIFO loop starved one run in three).
A quota starves it every time.  Only the measured journeys are judged: the warm-up's
start-up burst is not.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from locust_runs import ROOT, locust_command

from bench.present.report.data import run_data
from bench.present.report.warnings import warnings_for
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-generator-health-4f02"
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1's cpu controller, as mounted here
PERIOD_US = 100_000
STARVED_US = 10_000  # 10 % of one core
pytestmark = [pytest.mark.slow, pytest.mark.serial]


@contextlib.contextmanager
def _own_cgroup(pid: int) -> Iterator[Path]:
    """A cgroup of the cpu controller holding `pid` alone, unlimited until told; removed after."""
    if not (CGROUP_CPU / "cgroup.procs").exists() or not os.access(CGROUP_CPU, os.W_OK):
        pytest.skip(f"needs a writable cgroup v1 cpu controller at {CGROUP_CPU} (root)")
    group = CGROUP_CPU / f"bench-generator-health-{pid}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cgroup.procs").write_text(str(pid))
        yield group
    finally:
        with contextlib.suppress(OSError):  # the process may already have ended
            (CGROUP_CPU / "cgroup.procs").write_text(str(pid))
        group.rmdir()


def _run(out: Path, starve: bool) -> dict:
    """One 32-user step; when `starve`, the CPU quota holds from step start to ladder end.

    The quota starts when Locust logs the step's start and is lifted when it logs the
    ladder's end, so start-up and writing the results run at full speed.  A watchdog
    kills Locust if it has not ended in two minutes.
    """
    with SimulatorProcess("fast", seed=2, truth=True, api_key=KEY) as sim:
        proc = subprocess.Popen(
            ["taskset", "-c", "0", *locust_command(
                "--headless", "--only-summary", "--host", sim.url, "--ladder", "32",
                "--step-time", "4", "--settle", "0.5", "--poll-interval", "0.2",
                "--no-report", "--results-dir", str(out),
            )],
            cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        watchdog = threading.Timer(120, proc.kill)
        watchdog.start()
        tail: list[str] = []
        try:
            with proc.stderr, _own_cgroup(proc.pid) as group:
                quota = group / "cpu.cfs_quota_us"
                for line in proc.stderr:
                    tail = [*tail[-40:], line]
                    if starve and "ladder step 1:" in line:
                        quota.write_text(str(STARVED_US))
                    elif "ladder done" in line:
                        quota.write_text("-1")
                returncode = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert returncode == 0, "".join(tail)
    return {"results": load_results(out / "results.json")}


def test_a_starved_generator_is_named_with_the_fix(tmp_path):
    results = _run(tmp_path / "run", starve=True)["results"]
    (step,) = results.steps
    # A tenth of the 0.2 s interval: 20 ms.  10 ms of CPU per 100 ms, less than the step
    # needs, leaves the event loop up to 90 ms late at each throttled period, and later
    # still as the backlog grows.
    assert step["generator"]["saturated"] is True
    assert step["generator"]["loop_lag_p99_us"] > 20_000
    assert step["generator"]["poll_lag_p99_us"] is not None
    warnings = {w.code: w for w in warnings_for(run_data(results))}
    assert "saturated-generator" in warnings
    fix = warnings["saturated-generator"].fix
    assert "--processes" in fix and "--poll-interval" in fix
    # The process's CPU and the event loop's lateness were recorded alongside.
    assert results.merged("cpu").get_total_count() > 0
    assert results.merged("loop_lag").get_total_count() > 0


def test_an_idle_generator_is_not_accused(tmp_path):
    results = _run(tmp_path / "run", starve=False)["results"]
    (step,) = results.steps
    assert step["generator"]["saturated"] is False
    assert "saturated-generator" not in {w.code for w in warnings_for(run_data(results))}
