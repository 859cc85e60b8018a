"""SIGINT / SIGTERM during a real run: results written, sessions ended, a second signal stops.

Synchronisation is on what the processes say (simulator counters, the harness's log
lines), never on sleeps; every wait is bounded by the run's watchdog.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from locust_runs import LocustProcess, assert_sound, finish, wait_until

from bench.core import exitcodes
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-signals-91c4"
pytestmark = pytest.mark.slow

# A ladder far longer than the test: only the signal ends the run.
LONG = (
    "--headless", "--only-summary", "--no-report", "--journey-log",
    "--ladder", "4", "--step-time", "600", "--settle", "0.2",
    "--poll-interval", "0.01", "--ready-timeout", "10",
)  # fmt: skip


@pytest.fixture
def fast_sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess("fast", seed=31, truth=True, api_key=KEY) as sim:
        yield sim


def no_temp_files(directory: Path) -> None:
    # The results file is written to a temp file and renamed: none may be left over.
    names = sorted(p.name for p in directory.iterdir())
    assert all(not n.startswith(".") and not n.endswith(".tmp") for n in names), names


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_writes_results_and_ends_every_session(fast_sim, tmp_path, signum):
    out = tmp_path / "run"
    proc = LocustProcess([*LONG, "--host", fast_sim.url, "--results-dir", str(out)], key=KEY)
    wait_until(fast_sim, lambda c: c["sessions_ready"] >= 20, proc, what="20 sessions ready")
    proc.proc.send_signal(signum)
    result = finish(proc, out)
    assert_sound(result)
    assert result.code == exitcodes.OK, result.stderr[-3000:]
    assert result.doc["run"]["end_reason"] == "interrupted"
    assert result.doc["cleanup"]["leaked"] == 0 and result.doc["cleanup"]["sweep_ok"]
    no_temp_files(out)
    # Journeys cut by the signal are `aborted`; the rest kept their real outcome.
    assert set(result.outcomes) <= {"ready", "failed", "aborted"}
    # >= 20 requests were ready before the signal: each journey saw it, or was cut.
    assert result.outcomes["ready"] + result.outcomes.get("aborted", 0) >= 20
    # Nothing left alive, and nothing created after the harness stopped: every session
    # the target made for this run was ended by a DELETE (the journey's or the clean-up's).
    counters = fast_sim.counters()
    assert counters["live_sessions"] == 0
    tagged = [r for r in fast_sim.truth()["requests"] if result.tag in r["tags"]]
    assert len(tagged) == counters["creates_accepted"]
    for record in tagged:
        if record["session_id"]:
            assert record["ended"]["by"] == "delete", record
    known = {j["request_id"] for j in result.journeys}
    assert {r["request_id"] for r in tagged} <= known


def test_ctrl_c_to_the_process_group_leaves_the_embedded_simulator_to_the_clean_up(tmp_path):
    """A terminal's Ctrl-C reaches every process of the foreground group at once.

    The embedded simulator runs in a session of its own, so it is still there while
    the harness ends the run's sessions and sweeps by tag; it is stopped afterwards.
    """
    out = tmp_path / "run"
    proc = LocustProcess(
        [*LONG, "--sim-profile", "fast", "--progress-interval", "0.5", "--results-dir", str(out)],
        key=KEY,
    )
    proc.wait_for_line("progress: step 1/1")
    os.killpg(proc.pid, signal.SIGINT)
    result = finish(proc, out)
    assert_sound(result)
    assert result.code == exitcodes.OK, result.stderr[-3000:]
    assert result.doc["run"]["end_reason"] == "interrupted"
    cleanup = result.doc["cleanup"]
    assert cleanup["sweep_ok"] and cleanup["leaked"] == 0 and cleanup["left_alive"] == 0


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-group", "sigint-to-master"])
def test_interrupted_distributed_run_drains_its_workers(tmp_path, to_group):
    """--processes 2: the master drains the workers (journeys cut, sessions ended, last
    deltas shipped) instead of quitting under them; no worker counts as lost."""
    out = tmp_path / "run"
    proc = LocustProcess(
        [*LONG, "--processes", "2", "--sim-profile", "fast", "--progress-interval", "0.5",
         "--results-dir", str(out)],
        key=KEY,
    )  # fmt: skip
    proc.wait_for_line("progress: step 1/1")
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.proc.send_signal(signal.SIGINT)
    result = finish(proc, out)
    assert_sound(result)
    assert result.code == exitcodes.OK, result.stderr[-3000:]
    doc = result.doc
    assert doc["run"]["end_reason"] == "interrupted" and doc["run"]["workers"] == 2
    assert doc["run"]["workers_lost"] == []
    assert doc["totals"]["invariant_ok"]
    cleanup = doc["cleanup"]
    assert cleanup["sweep_ok"] and cleanup["leaked"] == 0 and cleanup["left_alive"] == 0
    assert set(result.outcomes) <= {"ready", "failed", "aborted"}


def test_second_signal_stops_at_once(tmp_path):
    # Real-time default profile: a request takes ~1.6 s to be ready, so the clean-up
    # after the first signal (which must wait for in-flight requests) is still going on
    # when the second signal lands.
    with SimulatorProcess("default", seed=32, truth=True, api_key=KEY) as sim:
        out = tmp_path / "run"
        proc = LocustProcess([*LONG, "--host", sim.url, "--results-dir", str(out)], key=KEY)
        wait_until(sim, lambda c: c["creates_accepted"] >= 4, proc, what="4 requests")
        proc.proc.send_signal(signal.SIGTERM)
        proc.wait_for_line("interrupted: aborting journeys")
        proc.proc.send_signal(signal.SIGINT)
        code = proc.wait()
        stderr = proc.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "second signal: stopped at once" in stderr
    doc = load_results(out / "results.json").document
    assert doc["run"]["end_reason"] == "interrupted twice"
    cleanup = doc["cleanup"]
    # The clean-up did not finish: what may still be alive is listed, never hidden.
    assert not cleanup["sweep_ok"]
    assert cleanup["leaked"] == len(cleanup["unresolved_request_ids"]) + len(
        set(cleanup["unended_session_ids"])
    ) > 0
    assert code == doc["run"]["exit_code"] == exitcodes.LEAKED_SESSIONS
    assert doc["totals"]["invariant_ok"]
    no_temp_files(out)
