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


def test_a_run_started_from_the_web_form_measures_and_writes_results(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    proc = LocustProcess(
        ["--web-host", "127.0.0.1", "--web-port", str(port), "--sim-profile", "fast",
         "--ladder", "1,2", "--step-time", "2", "--settle", "0.2", "--poll-interval", "0.01",
         "--results-dir", str(out), "--no-report"],
        key=KEY,
    )  # fmt: skip
    try:
        proc.wait_for_line("Starting web interface at")
        base = f"http://127.0.0.1:{port}"
        page = get_when_listening(base + "/")
        # The harness's options are in the UI, and the embedded simulator is the host.
        assert "poll_interval" in page.text and "ladder" in page.text
        # An emptied host field must not cut the run off from the embedded simulator.
        answer = httpx.post(base + "/swarm", data={"user_count": "1", "spawn_rate": "1",
                                                    "host": ""}, timeout=10)  # fmt: skip
        assert answer.json()["success"], answer.text
        finished = proc.wait_for_line("finished: clean run")
        assert "results written to" in "".join(proc.stderr.splitlines(True)[: finished + 1])
    finally:
        proc.proc.send_signal(signal.SIGTERM)  # the UI keeps serving after a run
        proc.wait()
    doc = load_results(out / "results.json").document
    assert [s["target_concurrency"] for s in doc["steps"]] == [1, 2]
    assert doc["totals"]["invariant_ok"] and doc["totals"]["outcomes"]["ready"] > 0
    assert doc["cleanup"]["left_alive"] == 0
    assert KEY not in proc.stderr and KEY not in proc.stdout
