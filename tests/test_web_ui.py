"""The harness driven from Locust's web UI: the form starts the ladder, the run ends by itself."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from locust_runs import LocustProcess, free_port

from bench.record.results import load_results

KEY = "canary-key-web-ui-31b7"
pytestmark = pytest.mark.slow


def get_when_listening(url: str, within_s: float = 20.0) -> httpx.Response:
    """GET once the server accepts connections (it logs its address just before).

    A bounded wait on a condition: retry until the port answers or the time is up.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.05)


def run_from_the_form(tmp_path, form: dict[str, str], *options: str) -> tuple[dict, LocustProcess]:
    """A web-UI harness (fast simulator) started with `options`, one run from `form`.

    Returns the run's results document and the (stopped) process.  The page checked on
    the way: the harness's options are in it."""
    port = free_port()
    out = tmp_path / "run"
    proc = LocustProcess(
        ["--web-host", "127.0.0.1", "--web-port", str(port), "--sim-profile", "fast",
         "--settle", "0.2", "--poll-interval", "0.01", "--results-dir", str(out), "--no-report",
         *options],
        key=KEY,
    )  # fmt: skip
    try:
        proc.wait_for_line("Starting web interface at")
        base = f"http://127.0.0.1:{port}"
        page = get_when_listening(base + "/")
        for name in ("poll_interval", "ladder", "arrival_rate", "max_in_flight"):
            assert name in page.text, name
        answer = httpx.post(base + "/swarm", data=form, timeout=10)
        assert answer.json()["success"], answer.text
        finished = proc.wait_for_line("finished: clean run")
        assert "results written to" in "".join(proc.stderr.splitlines(True)[: finished + 1])
    finally:
        proc.proc.send_signal(signal.SIGTERM)  # the UI keeps serving after a run
        proc.wait()
    return load_results(out / "results.json").document, proc


def test_a_run_started_from_the_web_form_measures_and_writes_results(tmp_path):
    # An emptied host field must not cut the run off from the embedded simulator.
    doc, proc = run_from_the_form(
        tmp_path, {"user_count": "1", "spawn_rate": "1", "host": ""},
        "--ladder", "1,2", "--step-time", "2",
    )  # fmt: skip
    assert [s["target_concurrency"] for s in doc["steps"]] == [1, 2]
    assert doc["totals"]["invariant_ok"] and doc["totals"]["outcomes"]["ready"] > 0
    assert doc["cleanup"]["left_alive"] == 0
    assert KEY not in proc.stderr and KEY not in proc.stdout


def test_the_open_model_and_durations_are_chosen_in_the_web_form(tmp_path):
    # Issue 13: the open model is selectable in the web UI; issue 14: a duration typed
    # in the form in Locust's own form ("2s") is read as on the command line.
    form = {"user_count": "1", "spawn_rate": "1", "host": "", "arrival_rate": "20,40",
            "max_in_flight": "8", "step_time": "2s"}  # fmt: skip
    doc, _ = run_from_the_form(tmp_path, form, "--ladder", "1", "--step-time", "30")
    assert doc["config"]["model"]["kind"] == "open"
    assert doc["config"]["step_time_s"] == 2.0
    assert [s["arrival_rate"] for s in doc["steps"]] == [20.0, 40.0]
    assert [s["target_concurrency"] for s in doc["steps"]] == [8, 8]
    assert doc["totals"]["outcomes"]["ready"] > 0 and doc["cleanup"]["left_alive"] == 0
