"""The open model: journeys start on schedule whatever the earlier ones do (issue 13).

Real runs against a simulator whose sessions take ~0.8 s: at 10 arrivals/s with at
most 6 in flight, the cap fills and arrivals are dropped, never delayed; with
--processes 2 the rate is split exactly between the workers.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pytest
from locust_runs import LocustProcess, assert_sound, finish

from bench.core import exitcodes
from bench.core.arrivals import CONSTANT, POISSON, ArrivalSchedule, parse_rates
from bench.record.results import PARTS, load_results
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-open-model-1c4d"


# --- the schedule, pure ------------------------------------------------------------------


def test_constant_arrivals_split_exactly_between_workers():
    rate, workers, start = 10.0, 3, 100.0
    times = []
    for index in range(workers):
        schedule = ArrivalSchedule(rate, index, workers, CONSTANT, start, random.Random(1))
        times += [schedule.next() for _ in range(10)]
    times.sort()
    # Together exactly the one-worker schedule: start, start + 0.1, start + 0.2, ...
    assert times == pytest.approx([start + k / rate for k in range(30)])


def test_poisson_arrivals_have_the_rate_asked_for():
    schedule = ArrivalSchedule(4.0, 0, 2, POISSON, 0.0, random.Random(7))
    times = [schedule.next() for _ in range(20_000)]
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    mean = sum(gaps) / len(gaps)
    # This worker's share, rate/2 = 2/s: mean gap 0.5 s (20,000 gaps: s.e. 0.35 %)
    assert mean == pytest.approx(0.5, rel=0.015)
    assert all(g > 0 for g in gaps)


@pytest.mark.parametrize(("text", "message"), [("0", "> 0"), ("1,x", "'x' is not"), ("", "comma")])
def test_bad_rates_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rates(text)


# --- real runs ---------------------------------------------------------------------------


def _run(sim: SimulatorProcess, out: Path, *extra: str) -> object:
    proc = LocustProcess(
        ["--headless", "--only-summary", "--host", sim.url, "--step-time", "3", "--settle", "0.5",
         "--poll-interval", "0.05", "--no-report", "--journey-log", "--results-dir", str(out),
         *extra],
        key=KEY,
    )  # fmt: skip
    return finish(proc, out)


def _scheduled(rate: float, step: dict) -> int:
    """Constant arrivals in the step: t = start + k / rate for every t before its end."""
    return math.ceil(rate * step["duration_s"])


@pytest.mark.slow
@pytest.mark.serial  # its bound is the generator's timeliness: beside other tests, 103 ms
def test_arrivals_keep_their_schedule_against_a_slow_target(tmp_path):
    with SimulatorProcess("default", time_scale=0.5, seed=4, truth=True, api_key=KEY) as sim:
        run = _run(sim, tmp_path / "run", "--arrival-rate", "10,20", "--max-in-flight", "6")
        counters, truth = sim.counters(), sim.truth()
    assert run.code == exitcodes.OK, run.stderr[-3000:]
    assert_sound(run)
    doc = run.doc
    assert doc["config"]["model"] == {
        "kind": "open", "arrivals": "constant", "max_in_flight": 6, "arrival_rates": [10.0, 20.0]
    }  # fmt: skip
    results = load_results(tmp_path / "run" / "results.json")
    for step in doc["steps"]:
        rate = step["arrival_rate"]
        journeys = step["measured"]["journeys"] + step["warmup"]["journeys"]
        # Every scheduled arrival is a journey or a drop (the step's end may fall on one).
        assert abs(journeys - _scheduled(rate, step)) <= 1, (rate, journeys, step["duration_s"])
        dropped = step["measured"]["outcomes"]["dropped"] + step["warmup"]["outcomes"]["dropped"]
        assert dropped > 0  # 6 in flight cannot hold 10/s of 0.8 s sessions
        # Never delayed: each served arrival started before the next one was due.
        lags = [results.histogram(step["index"], "start_lag", part) for part in PARTS]
        lags = [h for h in lags if h is not None]
        assert sum(h.get_total_count() for h in lags) == journeys - dropped
        assert max(h.get_max_value() for h in lags) < 1e6 / rate
    # The cap held: never more than 6 journeys in flight.
    assert max(s["in_flight"] for s in doc["timeline"]["samples"]) <= 6
    assert sum(s["dropped"] for s in doc["timeline"]["samples"]) == run.outcomes["dropped"]
    # Outcomes as the truth has them; nothing left alive.
    ours = [r for r in truth["requests"] if run.tag in r["tags"]]
    assert run.outcomes["ready"] == sum(r["outcome"] == "ready" for r in ours)
    assert counters["live_sessions"] == 0 and doc["cleanup"]["leaked"] == 0


@pytest.mark.slow
def test_the_rate_is_split_exactly_between_workers(tmp_path):
    with SimulatorProcess("fast", seed=4, truth=True, api_key=KEY) as sim:
        run = _run(sim, tmp_path / "run", "--arrival-rate", "8,16", "--max-in-flight", "40",
                   "--processes", "2")  # fmt: skip
    assert run.code == exitcodes.OK, run.stderr[-3000:]
    assert_sound(run)
    assert "dropped" not in run.outcomes  # a cap this high is never full
    by_step_node = Counter((j["step"], j["node"]) for j in run.journeys)
    nodes = {node for _, node in by_step_node}
    assert len(nodes) == 2
    for step in run.doc["steps"]:
        counts = [by_step_node[step["index"], node] for node in sorted(nodes)]
        scheduled = _scheduled(step["arrival_rate"], step)
        if step["index"] == 0:
            # The first step's schedule starts on each worker when its users exist (the
            # master spawns them after the run begins): never more, a few fewer.
            assert scheduled - step["arrival_rate"] <= sum(counts) <= scheduled + 2, counts
            continue
        # Worker j takes arrivals j, j+2, ...: the two shares differ by at most one, and
        # together they are the step's schedule (each worker's step starts a little apart).
        assert abs(counts[0] - counts[1]) <= 1, counts
        assert abs(sum(counts) - scheduled) <= 2, counts
