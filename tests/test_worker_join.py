"""A worker that joins a distributed run mid-way is set up and counted, not ignored."""

from __future__ import annotations

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

KEY = "test-key-worker-join"
pytestmark = pytest.mark.slow


def test_late_worker_runs_journeys_and_is_not_lost(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    with SimulatorProcess("fast", seed=43, truth=True, api_key=KEY) as sim:
        # 18 s of ladder: room for the late worker's start-up (imports, connect) on a
        # loaded machine before the drain, after which none is admitted.
        master = LocustProcess(
            master_args(port, sim.url, out, workers=1, ladder="2,4,4", step_time="6"), key=KEY
        )
        with locust_workers(port, tmp_path, key=KEY, count=1, name="first"):
            # Under way on the first worker alone (a fast-profile journey takes tens of ms,
            # so 40 ready sessions is inside the first 6 s step).
            wait_until(sim, lambda c: c["sessions_ready"] >= 40, master, what="40 ready")
            with locust_workers(port, tmp_path, key=KEY, count=1, name="late"):
                master.wait_for_line("joined mid-run and were set up")
                result = finish(master, out)
        counters = sim.counters()
    assert result.code == exitcodes.OK, result.stderr[-3000:]
    assert_sound(result)
    run = result.doc["run"]
    assert run["workers"] == 2 and run["workers_lost"] == []
    # Both workers ran journeys: the late one got users and the run's setup, and its
    # journeys reached the master's results.
    by_node = Counter(j["node"] for j in result.journeys)
    assert len(by_node) == 2 and min(by_node.values()) > 0, by_node
    assert counters["live_sessions"] == 0
