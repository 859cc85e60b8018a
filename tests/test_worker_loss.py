"""Kill one worker of a distributed run: the master finishes, keeps what it shipped, says so."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from locust_runs import (
    LocustProcess,
    assert_sound,
    finish,
    free_port,
    locust_workers,
    master_args,
    wait_until,
)

from bench.core import exitcodes
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-worker-loss-5e2a"
pytestmark = pytest.mark.slow


def test_killed_worker_is_marked_lost_and_its_shipped_data_kept(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    with SimulatorProcess("fast", seed=41, truth=True, api_key=KEY) as sim:
        master = LocustProcess(
            master_args(port, sim.url, out, workers=2, ladder="2", step_time="8"), key=KEY
        )
        with locust_workers(port, tmp_path, key=KEY) as workers:
            # A fast-profile journey takes >= ~20 ms (the phases' floors), so two users
            # make <= 100 ready sessions a second: 250 means >= 2.5 s of running, past the
            # first 2 s shipping interval of each worker.
            wait_until(sim, lambda c: c["sessions_ready"] >= 250, master, what="250 ready")
            workers[0].send_signal(signal.SIGKILL)
            result = finish(master, out)
        counters = sim.counters()
    # The one user the lost worker ran had a journey in flight (or not): it ends aborted.
    aborted = result.outcomes.get("aborted", 0)
    assert aborted <= 1
    assert_sound(result, unlogged_aborted=aborted)
    assert result.code == exitcodes.WORKER_LOST, result.stderr[-3000:]
    run = result.doc["run"]
    assert run["exit_code"] == exitcodes.WORKER_LOST and run["workers"] == 2
    lost = run["workers_lost"]
    assert len(lost) == 1
    by_node = Counter(j["node"] for j in result.journeys)
    # The lost worker's shipped journeys are kept; the survivor ran to the end.
    assert by_node[lost[0]] > 0
    assert len(by_node) == 2
    # What the lost worker had not shipped is missing, never invented: the results hold
    # no more journeys than the target accepted (plus refused creates).
    assert result.doc["totals"]["journeys"] <= counters["creates_accepted"] + sum(
        counters["creates_rejected"].values()
    )
    # Its sessions are not left running: the tag sweep ended whatever it had alive.
    assert counters["live_sessions"] == 0
