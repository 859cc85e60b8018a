"""Fault matrix: real harness runs against the simulator's fault injection.

For every fault: no crash, each journey in the outcome the fault dictates (counted
against the simulator's own fault counters and ground truth, exactly), outcomes that
add up to journeys, and no session left alive (or the leaked ids listed).

Counts are exact because each fault is counted where it lands: per endpoint and kind
in /_sim/counters; status anomalies once per request.  Faults whose count the
harness's own clean-up polls could inflate are switched on for a window that closes
mid-run, long before the clean-up.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from locust_runs import (
    SHORT,
    USERS,
    Finished,
    LocustProcess,
    assert_sound,
    endpoint_faults,
    finish,
    free_port,
    wait_until,
)

from bench.core import exitcodes
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-fault-matrix-3b1d"
pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess("fast", seed=11, truth=True, api_key=KEY) as sim:
        yield sim


def start(sim: SimulatorProcess, out: Path, *extra: str) -> LocustProcess:
    return LocustProcess(
        ["--headless", "--only-summary", "--host", sim.url, *SHORT,
         "--results-dir", str(out), "--journey-log", *extra],
        key=KEY,
    )  # fmt: skip


def run(sim: SimulatorProcess, out: Path, *extra: str) -> Finished:
    return finish(start(sim, out, *extra), out)


def run_with_fault_window(
    sim: SimulatorProcess, out: Path, kind: str, count: int, *extra: str
) -> Finished:
    """Run with the faults already set until `count` answers of `kind` were faulted on
    both create and status, then with none, so that the end-of-run clean-up meets
    no fault and the counters hold only what journeys were answered."""
    proc = start(sim, out, *extra)
    wait_until(
        sim,
        lambda c: endpoint_faults(c, "status", kind) >= count
        and endpoint_faults(c, "create", kind) >= count,
        proc,
        what=f"{count} {kind} answers on each endpoint",
    )
    sim.set_faults({})
    return finish(proc, out)


def model_rejections(counters: dict[str, Any]) -> int:
    """Creates the model itself refused (rate limit, capacity), as opposed to injected."""
    return sum(counters["creates_rejected"].values())


def assert_clean(run: Finished, sim: SimulatorProcess) -> dict[str, Any]:
    """Sound, nothing alive at the target, nothing reported leaked, every session ended."""
    assert_sound(run)
    counters = sim.counters()
    assert counters["live_sessions"] == 0, counters
    assert run.doc["cleanup"]["leaked"] == 0, run.doc["cleanup"]
    assert counters["leaked_sessions"] == 0  # no session died of its idle timeout either
    truth = {r["request_id"]: r for r in sim.truth()["requests"]}
    for journey in run.journeys:
        outcome = journey["outcome"]
        if outcome == "ready":
            # What the harness saw ready was really ready, and its DELETE ended it.
            record = truth[journey["request_id"]]
            assert record["session_id"] == journey["session_id"]
            assert record["ended"]["by"] == "delete", record
        elif outcome in ("failed", "completed_before_ready"):
            assert truth[journey["request_id"]]["outcome"] == outcome
    return counters


def unknown_to_harness(run: Finished, sim: SimulatorProcess) -> list[dict[str, Any]]:
    """The run's requests the target accepted but whose id the harness never learnt."""
    known = {j["request_id"] for j in run.journeys}
    tagged = [r for r in sim.truth()["requests"] if run.tag in r["tags"]]
    return [r for r in tagged if r["request_id"] not in known]


def assert_swept(run: Finished, unknown: list[dict[str, Any]]) -> None:
    """Sessions the harness could not know of were found by tag and ended by the sweep."""
    sessions = [r for r in unknown if r["session_id"]]
    assert run.doc["cleanup"]["ended_by_sweep"] == len(sessions)
    for record in sessions:
        assert record["ended"]["by"] == "delete", record


def expect(run: Finished, counters: dict[str, Any], taken: int = 0, **others: int) -> dict:
    """The outcomes a run must show: every accepted create ends ready, unless the model
    failed it (the fast profile fails ~0.2 % of pods; each `failed` journey is checked
    against the ground truth in assert_clean) or the fault `taken` it into `others`.
    Creates the model itself refused (its rate limit can bite on a slow box, whatever
    the fault) are always added to `create_rejected`."""
    failed = run.outcomes.get("failed", 0)
    rejected = model_rejections(counters) + others.pop("create_rejected", 0)
    counts = {
        "ready": counters["creates_accepted"] - taken - failed,
        "failed": failed,
        "create_rejected": rejected,
        **others,
    }
    return {k: v for k, v in counts.items() if v}


MATRIX: dict[str, dict[str, int]] = {}


def note(fault: str, run: Finished) -> None:
    """Remember the outcome counts for the matrix printed at the end (pytest -s)."""
    MATRIX[fault] = run.outcomes
    print(f"\nFAULT-MATRIX {fault}: {run.outcomes} exit={run.code}")


# ---------------------------------------------------------------------------- create


def test_create_429_with_retry_after(sim, tmp_path):
    sim.set_faults({"create": {"rate_429": 0.3, "retry_after_s": 1.0}})
    result = run(sim, tmp_path / "run")
    counters = assert_clean(result, sim)
    injected = endpoint_faults(counters, "create", "429")
    assert injected > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert result.outcomes == expect(result, counters, create_rejected=injected)
    assert result.summed("rejections") == Counter(
        {"429": injected + counters["creates_rejected"].get("429", 0)}
    )
    note("create 429 + Retry-After (30%)", result)


def test_capacity_rejections_400_and_500(tmp_path):
    profile = tmp_path / "capacity.toml"
    profile.write_text(
        'extends = "fast"\n'
        "[capacity]\nmax_concurrent_browsers = 4\nmax_queue = 1000\n"
        "[failures]\ncapacity_threshold = 0.0\ncapacity_400_max = 0.3\n"
        "capacity_500_max = 0.3\ncapacity_exponent = 1.0\n"
    )
    with SimulatorProcess(str(profile), seed=3, truth=True, api_key=KEY) as sim:
        result = run(sim, tmp_path / "run")
        counters = assert_clean(result, sim)
    by_code = counters["creates_rejected_by_code"]
    assert by_code["failed_to_run_browser"] > 0 and by_code["no_browser_available"] > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert result.outcomes == expect(result, counters)
    # Each refusal is kept with its HTTP code: 400 "Failed to run browser", 500 "No browser".
    assert result.summed("rejections") == Counter(counters["creates_rejected"])
    seen = Counter(str(j["http_status"]) for j in result.journeys if j["http_status"])
    assert seen == Counter(counters["creates_rejected"])
    note("capacity 400/500 on create", result)


# ---------------------------------------------------------------------------- status


def test_status_429_with_retry_after_is_waited_out(sim, tmp_path):
    sim.set_faults({"status": {"rate_429": 0.5, "retry_after_s": 1.0}})
    result = run(sim, tmp_path / "run")
    counters = assert_clean(result, sim)
    assert endpoint_faults(counters, "status", "429") > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert result.outcomes == expect(result, counters)
    note("status 429 + Retry-After (50%)", result)


def test_5xx_burst(sim, tmp_path):
    """A burst of 5xx on every status call mid-run, 5xx on 20 % of creates throughout."""
    steady = {"create": {"rate_5xx": 0.2}}
    sim.set_faults(steady)
    out = tmp_path / "run"
    proc = start(sim, out, "--max-poll-errors", "2")
    wait_until(sim, lambda c: c["sessions_ready"] >= 20, proc, what="20 sessions ready")
    sim.set_faults({**steady, "status": {"rate_5xx": 1.0}})
    # During the burst a journey ends after 3 failed polls, and at most USERS journeys
    # are in flight with <= 2 each: past 2 * USERS + 3, some journey must have given up.
    wait_until(
        sim,
        lambda c: endpoint_faults(c, "status", "5xx") >= 2 * USERS + 3,
        proc,
        what="the burst",
    )
    sim.set_faults(steady)
    result = finish(proc, out)
    counters = assert_clean(result, sim)
    outcomes = result.outcomes
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert set(outcomes) - {"failed"} == {"ready", "poll_error", "create_rejected"}
    assert outcomes["create_rejected"] == endpoint_faults(
        counters, "create", "5xx"
    ) + model_rejections(counters)
    # Every accepted create ends ready or, if the burst caught it, in poll_error; the
    # sessions of those were found and ended by the clean-up (assert_clean).
    assert outcomes["ready"] + outcomes["poll_error"] + outcomes.get("failed", 0) == counters[
        "creates_accepted"
    ]
    truth = {r["request_id"]: r for r in sim.truth()["requests"]}
    for journey in result.journeys:
        if journey["outcome"] == "poll_error":
            ended = truth[journey["request_id"]]["ended"]
            assert ended is None or ended["by"] == "delete", ended
    note("5xx burst on status (+20% 5xx on create)", result)


def test_malformed_json(sim, tmp_path):
    sim.set_faults({"status": {"rate_malformed": 0.1}, "create": {"rate_malformed": 0.1}})
    # Closed mid-run: the clean-up's own polls of the cut-short requests meet no fault.
    result = run_with_fault_window(
        sim, tmp_path / "run", "malformed", 5, "--protocol-error-threshold", "1"
    )
    counters = assert_clean(result, sim)
    on_create = endpoint_faults(counters, "create", "malformed")
    on_status = endpoint_faults(counters, "status", "malformed")
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    # A cut create answer was still a create: the model accepted it, the harness
    # never learnt its id, and the tag sweep ended its session (if it had one).
    unknown = unknown_to_harness(result, sim)
    assert len(unknown) == on_create
    assert_swept(result, unknown)
    # Every cut create answer ends its journey in protocol_error; so does every cut
    # status answer a journey read.  The clean-up's mid-run polls (the reaper looking
    # for the session of a journey that gave up) share the status endpoint, so a cut
    # answer may have gone to one of them instead: the status side is an upper bound.
    taken = result.outcomes.get("protocol_error", 0)
    assert on_create <= taken <= on_create + on_status
    assert taken >= on_create + on_status // 2, (taken, on_create, on_status)
    assert result.outcomes == expect(result, counters, taken, protocol_error=taken)
    note("malformed JSON (10% of create and status answers)", result)


def test_dropped_connections(sim, tmp_path):
    sim.set_faults({"create": {"rate_drop": 0.2}, "status": {"rate_drop": 0.2}})
    # Enough retries that a run of dropped polls never ends a journey: exact outcomes.
    result = run(sim, tmp_path / "run", "--max-poll-errors", "100")
    counters = assert_clean(result, sim)
    dropped_creates = endpoint_faults(counters, "create", "drop")
    assert dropped_creates > 0 and endpoint_faults(counters, "status", "drop") > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    # A dropped create never reached the model (no session, nothing to clean).
    assert result.outcomes == expect(result, counters, create_error=dropped_creates)
    note("dropped connections (20% of create and status)", result)


def test_answers_slower_than_the_client_timeout(sim, tmp_path):
    # 25 s x 0.02 = 0.5 s of delay against a 0.2 s client timeout.
    slow = {"rate_slow": 0.2, "slow_s": 25.0}
    sim.set_faults({"create": slow, "status": slow})
    # Closed early: a slow create lands in the model 0.5 s after it was sent, and it
    # must be a session before the end-of-run sweep looks for it.
    result = run_with_fault_window(
        sim, tmp_path / "run", "slow", 3, "--client-timeout", "0.2", "--max-poll-errors", "100"
    )
    counters = assert_clean(result, sim)
    slow_creates = endpoint_faults(counters, "create", "slow")
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    # A create the client gave up on may still have been carried out (if the server did
    # not cancel it): then the harness never learnt its id, and the sweep ended it.
    unknown = unknown_to_harness(result, sim)
    assert len(unknown) <= slow_creates
    assert_swept(result, unknown)
    assert result.outcomes == expect(result, counters, len(unknown), create_error=slow_creates)
    note("answers slower than the client timeout (20%, 0.5 s vs 0.2 s)", result)


def test_unknown_status_value(sim, tmp_path):
    sim.set_faults({"status": {"rate_unknown_status": 0.3}})
    result = run(sim, tmp_path / "run")
    counters = assert_clean(result, sim)
    odd = endpoint_faults(counters, "status", "unknown_status")
    assert odd > 0
    assert result.code == exitcodes.PROTOCOL_ERRORS, result.stderr[-2000:]
    assert result.outcomes == expect(result, counters, odd, protocol_error=odd)
    note("unknown status value (30% of requests)", result)


def test_status_going_backwards(sim, tmp_path):
    sim.set_faults({"status": {"rate_backwards": 0.5}})
    result = run(sim, tmp_path / "run")
    counters = assert_clean(result, sim)
    backwards = endpoint_faults(counters, "status", "backwards")
    assert backwards > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    # Tolerated: every journey still ends ready, and each regression is counted once.
    assert result.outcomes == expect(result, counters)
    assert result.summed("anomalies") == backwards
    note("status going backwards (50% of requests)", result)


def test_completed_without_ever_ready(sim, tmp_path):
    sim.set_faults({"status": {"rate_completed": 0.3}})
    result = run(sim, tmp_path / "run")
    counters = assert_clean(result, sim)
    completed = endpoint_faults(counters, "status", "completed")
    assert completed > 0 and counters["completed_before_ready"] == completed
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert result.outcomes == expect(result, counters, completed, completed_before_ready=completed)
    note("completed without ever ready (30% of requests)", result)


# ---------------------------------------------------------------------------- target


def test_target_killed_mid_run_and_restarted(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    first = SimulatorProcess("fast", seed=21, truth=True, api_key=KEY, port=port).start()
    second = None
    try:
        proc = start(first, out)
        wait_until(first, lambda c: c["sessions_ready"] >= 20, proc, what="20 sessions ready")
        os.kill(first.pid, signal.SIGKILL)  # no goodbye: connections just die
        first.stop()
        second = SimulatorProcess("fast", seed=22, truth=True, api_key=KEY, port=port).start()
        result = finish(proc, out)
        assert_sound(result)
        counters = second.counters()
        truth = {r["request_id"]: r for r in second.truth()["requests"]}
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert counters["live_sessions"] == 0 and result.doc["cleanup"]["leaked"] == 0
    outcomes = Counter()
    for journey in result.journeys:
        request_id = journey["request_id"]
        if request_id in truth:
            kind = "second"  # created on the restarted target: all must have gone to plan
            assert journey["outcome"] == truth[request_id]["outcome"] in ("ready", "failed")
            if journey["outcome"] == "ready":
                assert truth[request_id]["ended"]["by"] == "delete"
        elif request_id is not None:
            kind = "first"  # the killed target's: ready before the kill, or lost with it
            assert journey["outcome"] in ("ready", "poll_error"), journey
        else:
            kind = "none"  # no create answered while the target was down
            assert journey["outcome"] == "create_error", journey
        outcomes[kind, journey["outcome"]] += 1
    assert outcomes["second", "ready"] == counters["sessions_ready"] > 0
    assert outcomes["second", "failed"] == counters["sessions_failed"]
    # 20 sessions were ready on the first target when it was killed; a journey whose
    # next poll would have seen ready (at most one per user) lost it with the target.
    assert outcomes["first", "ready"] + outcomes["first", "poll_error"] >= 20
    assert outcomes["first", "ready"] >= 20 - USERS
    # The kill hit something in flight: a journey polling, creating or releasing.
    hit = outcomes["first", "poll_error"] + outcomes["none", "create_error"]
    assert hit + result.summed("release_errors") > 0
    note("target killed (SIGKILL) and restarted on the same port", result)
