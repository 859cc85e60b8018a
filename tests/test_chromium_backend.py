"""The chromium backend: real headless browsers per session, and none left behind.

Each test runs `bench simulate` with the chromium profile at x0.02 (provisioning is the
real browser start-up; the other phases and the idle timeout are scaled) and TMPDIR in
the test's own folder, so our browsers are exactly the Chromium processes whose
--user-data-dir lies there.  A browser is checked gone with /proc (psutil): no live
process with our user-data-dir, and no member left of its process group, zombies
included (the simulator reaps them).

Skipped only without /usr/bin/chromium, and then failed instead when
BENCH_REQUIRE_CHROMIUM=1 (as .ci/run sets it), so CI never skips them silently.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from cdp_helpers import ready_session, wait_until, write_profile
from conftest import require_chromium

from bench.measure.cdp_client import connect_check
from bench.simulator.browsers import group_members
from bench.simulator.process import SimulatorProcess

KEY = "chromium-test-key"
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
GONE_S = 15.0  # bound on waiting for a browser to disappear (the harness-death path ~1 s)


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium(CHROMIUM)


@pytest.fixture
def profile(tmp_path: Path) -> str:
    return write_profile(tmp_path, "chromium-fast", 'extends = "chromium"\ntime_scale = 0.02\n')


@pytest.fixture
def tmpdir_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # The simulator's browsers keep their user-data-dirs under $TMPDIR: here, ours only.
    # A short one: Chromium puts its singleton UNIX socket under $TMPDIR too, and a
    # socket path has at most 107 bytes (pytest's tmp_path is too deep for that).
    folder = Path(tempfile.mkdtemp(prefix="bcr-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sim(profile: str, tmpdir_env: Path) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(profile, seed=5, truth=True, api_key=KEY) as process:
        yield process


def api_for(process: SimulatorProcess) -> httpx.Client:
    return httpx.Client(base_url=process.url, headers={"anchor-api-key": KEY}, timeout=30)


def our_browsers(folder: Path) -> list[psutil.Process]:
    """Live (non-zombie) Chromium processes whose user-data-dir is under `folder`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(arg.startswith(f"--user-data-dir={folder}") for arg in cmdline):
            found.append(proc)
    return found


def _request_of(process: SimulatorProcess, session_id: str) -> str:
    return next(r["request_id"] for r in process.truth()["requests"]
                if r["session_id"] == session_id)


def assert_gone(folder: Path, pgid: int | None = None) -> None:
    wait_until(lambda: not our_browsers(folder), "no Chromium of ours is left", GONE_S)
    if pgid is not None:
        # The group's members were reaped, not left as zombies.
        wait_until(lambda: not group_members(pgid), f"process group {pgid} is empty", GONE_S)


def test_a_session_is_a_real_browser_that_navigates_to_the_simulators_page(sim, tmpdir_env):
    with api_for(sim) as api:
        data = ready_session(api)
        session = data["session"]
        url = session["cdp_url"]
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/devtools/browser/[0-9a-f-]{36}", url), url
        assert our_browsers(tmpdir_env)
        result = connect_check(url, navigate_url=sim.url + "/_sim/page", timeout=30)
        assert result.ok, result
        # The real Chrome version: the one the installed Chromium reports.
        version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
        number = re.search(r"\d+\.\d+\.\d+\.\d+", version)
        # (--headless is the new headless mode, which calls itself plain Chrome.)
        assert number and result.browser in {f"Chrome/{number.group(0)}",
                                              f"HeadlessChrome/{number.group(0)}"}
        # The browser really fetched the page from the simulator.
        assert sim.counters()["pages_served"] >= 1
        assert result.navigate_s is not None and result.navigate_s > 0
        # Provisioning lasted exactly the browser's start-up: launch to its answer.
        truth = sim.truth()
        request = next(r for r in truth["requests"] if r["session_id"] == session["session_id"])
        browser = truth["browsers"][request["request_id"]]
        starts = {t["phase"]: t["t"] for t in request["transitions"]}
        assert starts["configuring"] == pytest.approx(browser["answered"]["t"], abs=1e-6)
        assert starts["provisioning"] <= browser["launched"]["t"] < browser["answered"]["t"]
        assert browser["startup_s"] > 0 and browser["failure"] is None


def test_delete_kills_the_browser(sim, tmpdir_env):
    with api_for(sim) as api:
        session = ready_session(api)["session"]
        pid = sim.truth()["browsers"][_request_of(sim, session["session_id"])]["pid"]
        assert psutil.pid_exists(pid) and our_browsers(tmpdir_env)
        assert api.delete(f"/v1/sessions/{session['session_id']}").status_code == 200
        assert_gone(tmpdir_env, pid)
        record = sim.truth()["browsers"][_request_of(sim, session["session_id"])]
        assert record["kill_reason"] == "released" and record["exit_code"] == -signal.SIGKILL
        assert not Path(record["user_data_dir"]).exists()
        assert connect_check(session["cdp_url"], timeout=5).error == "refused"


def test_expiry_kills_the_browser_without_any_request(sim, tmpdir_env):
    with api_for(sim) as api:
        # idle_timeout 1 min x 0.02 = 1.2 s; nobody asks the API anything meanwhile.
        session = ready_session(api, {"timeout": {"idle_timeout": 1}})["session"]
        pid = sim.truth()["browsers"][_request_of(sim, session["session_id"])]["pid"]
    assert_gone(tmpdir_env, pid)
    request = next(r for r in sim.truth()["requests"] if r["session_id"] == session["session_id"])
    assert request["ended"]["by"] == "idle_timeout"


def test_simulator_exit_kills_every_browser(profile, tmpdir_env):
    process = SimulatorProcess(profile, seed=5, truth=True, api_key=KEY).start()
    try:
        with api_for(process) as api:
            for _ in range(2):
                ready_session(api)
        assert our_browsers(tmpdir_env)
        pids = [b["pid"] for b in process.truth()["browsers"].values()]
    finally:
        assert process.stop() == 0
    # Killed with the simulator, its browsers' last processes are zombies until the
    # machine's init reaps them: wait for that, as for any release.
    for pid in pids:
        assert_gone(tmpdir_env, pid)
    assert not list(tmpdir_env.iterdir())  # every user-data-dir removed


def test_sigkilled_simulator_takes_its_browsers_along(profile, tmpdir_env):
    process = SimulatorProcess(profile, seed=5, truth=True, api_key=KEY).start()
    try:
        with api_for(process) as api:
            ready_session(api)
            ready_session(api)
        assert len(process.truth()["browsers"]) == 2 and our_browsers(tmpdir_env)
        os.kill(process.pid, signal.SIGKILL)
        assert_gone(tmpdir_env)
    finally:
        process.stop()


HARNESS = textwrap.dedent("""
    import sys, time, httpx
    sys.path.insert(0, "tests")
    from cdp_helpers import ready_session
    from bench.simulator.process import SimulatorProcess
    sim = SimulatorProcess(sys.argv[1], seed=5, truth=True, api_key="k").start()
    with httpx.Client(base_url=sim.url, headers={"anchor-api-key": "k"}, timeout=30) as api:
        ready_session(api)
    print(sim.pid, flush=True)
    time.sleep(600)  # stands for a harness that is busy until it is killed
""")


def test_sigkilled_harness_takes_the_simulator_and_its_browsers_along(profile, tmpdir_env):
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, profile], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None
        sim_pid = int(harness.stdout.readline())
        assert our_browsers(tmpdir_env)
        harness.kill()
        harness.wait(10)
        # The simulator notices its parent is gone (--exit-with-parent), stops, kills.
        wait_until(lambda: not psutil.pid_exists(sim_pid)
                   or psutil.Process(sim_pid).status() == psutil.STATUS_ZOMBIE,
                   "the simulator exits", GONE_S)
        assert_gone(tmpdir_env)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(10)
        if harness.stdout is not None:
            harness.stdout.close()


def test_a_browser_that_does_not_start_fails_the_request(tmp_path, tmpdir_env):
    path = write_profile(tmp_path, "bad-browser", 'extends = "chromium"\ntime_scale = 0.02\n'
                         '[backend]\nexecutable = "/bin/false"\n')
    with SimulatorProcess(path, seed=5, truth=True, api_key=KEY) as process, api_for(
        process
    ) as api:
        created = api.post("/v1/sessions/async", json={})
        request_id = created.json()["data"]["request_id"]
        data = wait_until(lambda: (d := api.get(
            f"/v1/sessions/async/{request_id}/status").json()["data"])["status"] == "failed"
            and d, "the request fails")
        assert "session" not in data
        record = process.truth()["browsers"][request_id]
        assert record["failure"].startswith("OSError: exited with code 1")
        assert record["kill_reason"] == "launch_failed"
        assert process.counters()["browsers"]["failed"] == 1
