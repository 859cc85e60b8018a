"""Is `ready` usable?  The journey's CDP connect check in real runs (issue 13).

Against the simulator's CDP endpoint (modelled latencies, faults) and against real
headless Chromium sessions: connect, first command and navigation are timed for every
ready session, unusable ones end in connect_error / navigate_error with their causes
counted, no secret of a cdp_url reaches any file or stream, and no browser outlives
the run, not even a run that was killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cdp_helpers import write_profile
from conftest import require_chromium
from locust_runs import LocustProcess, assert_sound, finish

from bench.core import exitcodes
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-connect-check-90ab"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow
ARGS = ("--ladder", "2,4", "--step-time", "2", "--settle", "0.2", "--poll-interval", "0.02",
        "--ready-timeout", "10", "--no-report", "--journey-log", "--cdp-check",
        "--cdp-navigate", "/_sim/page")  # fmt: skip


def _run(sim: SimulatorProcess, out: Path, *args: str) -> object:
    proc = LocustProcess(
        ["--headless", "--only-summary", "--host", sim.url, *args, "--results-dir", str(out)],
        key=KEY, timeout=120,
    )  # fmt: skip
    return finish(proc, out)


def _cdp_count(run: object, metric: str) -> int:
    return sum(1 for j in run.journeys if metric in j["samples_us"])  # type: ignore[attr-defined]


def test_every_ready_session_is_connected_to_and_navigated(tmp_path):
    with SimulatorProcess("fast", seed=8, truth=True, api_key=KEY) as sim:
        run = _run(sim, tmp_path / "run", *ARGS)
        counters = sim.counters()
    assert run.code == exitcodes.OK, run.stderr[-3000:]
    assert_sound(run)
    ready = run.outcomes["ready"]
    assert ready > 0 and set(run.outcomes) <= {"ready", "failed"}
    for metric in ("connect", "first_command", "navigate"):
        assert _cdp_count(run, metric) == ready, metric
    # The simulator saw exactly one connection and one navigation per ready session.
    assert counters["cdp"]["connects"] == ready
    assert counters["cdp"]["load_events"] == ready
    assert counters["live_sessions"] == 0
    # The cdp_url carries a token in its query string: it is written nowhere.
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"token=" not in path.read_bytes(), path
    assert "token=" not in run.stderr and "token=" not in run.stdout


def test_unusable_sessions_are_their_own_outcome_with_their_causes(tmp_path):
    with SimulatorProcess("fast", seed=8, truth=True, api_key=KEY) as sim:
        sim.set_faults({"cdp": {"rate_5xx": 0.3}})
        run = _run(sim, tmp_path / "run", *ARGS)
        counters = sim.counters()
    assert run.code == exitcodes.OK, run.stderr[-3000:]
    assert_sound(run)
    refused = run.outcomes.get("connect_error", 0)
    assert refused > 0
    causes = run.summed("cdp_errors")
    assert causes == {"connect: refused": refused}
    # Exactly as many upgrades were refused by the injected fault.
    assert counters["cdp"]["refused"]["fault"] == refused
    # A session that said ready but could not be used was still ended by the journey.
    assert counters["live_sessions"] == 0 and run.doc["cleanup"]["leaked"] == 0
    # Its provisioning was real: it has a ready time like any other ready journey.
    unusable = [j for j in run.journeys if j["outcome"] == "connect_error"]
    assert all("ready" in j["samples_us"] for j in unusable)


# --- real Chromium --------------------------------------------------------------------------


@pytest.fixture
def chromium_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    require_chromium(CHROMIUM)
    # Browsers keep their user-data-dirs under $TMPDIR: a short one of ours (Chromium's
    # socket path must stay under 108 bytes), so leftovers are easy to find.
    folder = Path(tempfile.mkdtemp(prefix="bcc-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _browsers(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(a.startswith(f"--user-data-dir={folder}") for a in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _none_left(folder: Path, within_s: float = 20.0) -> bool:
    end = time.monotonic() + within_s
    while _browsers(folder):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def test_a_real_browser_ladder_with_navigation_leaves_no_browser(tmp_path, chromium_tmp):
    profile = write_profile(tmp_path, "chromium-test", 'extends = "chromium"\n')
    out = tmp_path / "run"
    proc = LocustProcess(
        ["--headless", "--only-summary", "--sim-profile", profile, "--ladder", "1,2",
         "--step-time", "4", "--settle", "0.5", "--poll-interval", "0.05", "--ready-timeout", "30",
         "--no-report", "--journey-log", "--cdp-check", "--cdp-navigate", "/_sim/page",
         "--results-dir", str(out)],
        key=KEY, timeout=150,
    )  # fmt: skip
    run = finish(proc, out)
    assert run.code == exitcodes.OK, run.stderr[-3000:]
    assert_sound(run)
    ready = run.outcomes["ready"]
    assert ready > 0 and _cdp_count(run, "navigate") == ready
    # Provisioning is a real browser's start-up: hundreds of ms, not the model's.
    provisioning = [j["samples_us"]["provisioning"][0] for j in run.journeys
                    if "provisioning" in j["samples_us"]]  # fmt: skip
    assert provisioning and min(provisioning) > 50_000
    assert _none_left(chromium_tmp)


def test_a_killed_run_leaves_no_browser(tmp_path, chromium_tmp):
    profile = write_profile(tmp_path, "chromium-test", 'extends = "chromium"\n')
    out = tmp_path / "run"
    proc = LocustProcess(
        ["--headless", "--only-summary", "--sim-profile", profile, "--ladder", "2",
         "--step-time", "60", "--settle", "0.5", "--poll-interval", "0.05", "--no-report",
         "--cdp-check", "--results-dir", str(out)],
        key=KEY, timeout=120,
    )  # fmt: skip
    proc.wait_for_line("ladder step 1")
    end = time.monotonic() + 30
    while not _browsers(chromium_tmp):
        assert time.monotonic() < end, "no browser started"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # the harness dies without a word
    proc.wait()
    # Its simulator notices (--exit-with-parent) and its browsers die with it.
    assert _none_left(chromium_tmp, within_s=30)
    assert re.search(r"ladder step 1", proc.stderr)
