"""The run's roles without Locust: lifecycle states and signals, the exit verdict, the fleet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.core import exitcodes
from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.measure.fleet import MSG_DRAIN, MSG_SETUP, MSG_STEP, RemoteFleet, split_quota
from bench.measure.lifecycle import RunState, SignalAction, Stage
from bench.measure.verdict import exit_verdict
from bench.record.recorder import Recorder

# --- lifecycle --------------------------------------------------------------------------


def test_a_run_walks_its_stages_once():
    state = RunState()
    assert state.stage is Stage.IDLE and not state.finalise()  # no run: nothing to finalise
    state.start()
    assert state.stage is Stage.RUNNING and not state.draining
    assert state.drain(10.0) and state.draining_since == 10.0
    assert not state.drain(11.0) and state.draining_since == 10.0  # once
    assert state.finalise() and state.finalised and not state.finished
    assert not state.finalise()  # once per run
    state.finish()
    assert state.finished and state.stage is Stage.FINISHED


def test_finalise_straight_from_running_skips_the_drain():
    # A local interrupt stops the users and finalises without the ladder's drain.
    state = RunState()
    state.start()
    assert state.finalise() and not state.drain(1.0)


@pytest.mark.parametrize(
    ("prepare", "first", "second"),
    [
        (lambda s: None, SignalAction.STOP_NOW, SignalAction.STOP_NOW),  # idle
        (lambda s: s.start(), SignalAction.INTERRUPT, SignalAction.STOP_NOW),
        (lambda s: (s.start(), s.drain(0.0)), SignalAction.INTERRUPT, SignalAction.STOP_NOW),
        (lambda s: (s.start(), s.finalise()), SignalAction.INTERRUPT, SignalAction.STOP_NOW),
        (lambda s: (s.start(), s.finalise(), s.finish()), SignalAction.STOP_NOW,
         SignalAction.STOP_NOW),
    ],
    ids=["idle", "running", "draining", "finalising", "finished"],
)  # fmt: skip
def test_what_a_signal_means_in_each_stage(prepare, first, second):
    state = RunState()
    prepare(state)
    assert state.signal() is first
    assert state.signal() is second


def test_the_next_web_ui_run_starts_afresh():
    state = RunState()
    state.start()
    state.signal()
    state.drain(5.0)
    state.finalise()
    state.finish()
    state.start()
    assert state.stage is Stage.RUNNING and not state.interrupted
    assert state.draining_since is None
    assert state.signal() is SignalAction.INTERRUPT


def test_drain_overdue():
    state = RunState()
    assert not state.drain_overdue(1e9, 1.0)
    state.start()
    state.drain(100.0)
    assert not state.drain_overdue(110.0, 10.0)
    assert state.drain_overdue(110.5, 10.0)


# --- exit verdict ---------------------------------------------------------------------------


def _verdict(**overrides: Any) -> tuple[int, str]:
    args: dict[str, Any] = dict(
        journeys=10, outcomes={"ready": 10}, violations=[], protocol_error_threshold=0.01,
        lost_workers=[], cleanup={"leaked": 0},
    )  # fmt: skip
    args.update(overrides)
    return exit_verdict(**args)


def test_clean_run():
    assert _verdict() == (exitcodes.OK, "clean run")


@pytest.mark.parametrize(
    ("overrides", "code", "why"),
    [
        ({"outcomes": {"create_error": 10}}, exitcodes.TARGET_UNREACHABLE, "no create call"),
        ({"outcomes": {"ready": 9, "protocol_error": 1}}, exitcodes.PROTOCOL_ERRORS,
         "1 of 10 journeys ended in protocol errors"),
        ({"lost_workers": ["w1"]}, exitcodes.WORKER_LOST, "1 worker(s) lost mid-run (w1)"),
        ({"cleanup": {"leaked": 3, "left_alive": 1}}, exitcodes.LEAKED_SESSIONS,
         "3 sessions not confirmed ended (1 still alive after the sweep)"),
        ({"violations": ["step 0: 9 outcomes for 10 journeys"]}, exitcodes.INVARIANT_BROKEN,
         "outcomes do not add up: step 0"),
        ({"journeys": 0, "outcomes": {}}, exitcodes.NO_JOURNEYS, "no journey ran"),
        # Issue 10 (4): no journey got a session and the run read "clean run", exit 0.
        ({"outcomes": {"create_rejected": 10}, "rejections": {"404": 10}}, exitcodes.NO_READY,
         "no journey reached ready: the create was answered 404 10 times (does the provider "
         "serve POST /v1/sessions/async?)"),
        ({"outcomes": {"timeout": 7, "failed": 3}}, exitcodes.NO_READY,
         "no journey reached ready: 7 journeys ended in timeout"),
        ({"outcomes": {"create_rejected": 10}, "refused": "the provider refused the API key (401)"},
         exitcodes.REFUSED, "the provider refused the API key (401); the run stopped early"),
    ],
)  # fmt: skip
def test_each_problem_has_its_code(overrides, code, why):
    got_code, got_why = _verdict(**overrides)
    assert got_code == code and why in got_why


def test_precedence_protocol_before_lost_before_leaks_before_invariant():
    everything = dict(
        outcomes={"ready": 5, "protocol_error": 5}, lost_workers=["w"],
        cleanup={"leaked": 1}, violations=["x"],
    )  # fmt: skip
    assert _verdict(**everything)[0] == exitcodes.PROTOCOL_ERRORS
    everything["outcomes"] = {"ready": 10}
    assert _verdict(**everything)[0] == exitcodes.WORKER_LOST
    everything["lost_workers"] = []
    assert _verdict(**everything)[0] == exitcodes.LEAKED_SESSIONS
    everything["cleanup"] = {"leaked": 0}
    assert _verdict(**everything)[0] == exitcodes.INVARIANT_BROKEN


# --- the master's fleet, on a fake runner -----------------------------------------------------


@dataclass
class Client:
    id: str
    state: str = "running"


@dataclass
class FakeRunner:
    clients: dict[str, Client] = field(default_factory=dict)
    sent: list[tuple[str, Any, str | None]] = field(default_factory=list)

    def send_message(self, kind: str, data: Any, client_id: str | None = None) -> None:
        self.sent.append((kind, data, client_id))


MISSING = "missing"


def _fleet(*workers: str) -> tuple[RemoteFleet, FakeRunner]:
    runner = FakeRunner({w: Client(w) for w in workers})
    return RemoteFleet(runner, MISSING), runner


def test_split_quota_is_exact():
    assert split_quota(None, 3) == [None, None, None]
    assert split_quota(10, 3) == [4, 3, 3]
    assert sum(split_quota(7, 4)) == 7
    assert split_quota(5, 0) == []


def test_start_splits_the_session_quota_between_the_workers():
    fleet, runner = _fleet("b", "a", "c")
    fleet.start({"run_id": "r"}, 10)
    assert [(k, d["quota"], c) for k, d, c in runner.sent] == [
        (MSG_SETUP, 4, "a"), (MSG_SETUP, 3, "b"), (MSG_SETUP, 3, "c"),
    ]  # fmt: skip
    # ...and the open model's arrivals: worker i of 3 takes i, i+3, i+6, ...
    assert [d["share"] for _, d, _ in runner.sent] == [[0, 3], [1, 3], [2, 3]]
    assert fleet.size() == 3
    fleet.enter_step(2)
    fleet.drain()
    assert runner.sent[-2:] == [(MSG_STEP, {"index": 2}, None), (MSG_DRAIN, {}, None)]


def _delta(started: int, outcomes: dict[str, int], step: int = 0) -> dict[str, Any]:
    recorder = Recorder()
    for _ in range(started):
        recorder.journey_started(step, False)
    for outcome, n in outcomes.items():
        for _ in range(n):
            recorder.journey_finished(step, False, JourneyResult(Outcome(outcome)))
    return recorder.take_delta()


def test_reports_are_merged_and_in_flight_is_the_shipped_balance():
    fleet, _ = _fleet("a", "b")
    fleet.start({}, None)
    fleet.on_report("a", {"delta": _delta(5, {"ready": 3})})
    fleet.on_report("b", {"delta": _delta(2, {"failed": 2}), "journeys": [b"x\n"]})
    assert fleet.recorder.totals()[0] == 7
    assert fleet.in_flight() == 2
    assert fleet.take_journey_lines() == [b"x\n"]
    assert not fleet.drained() and not fleet.capped()
    fleet.on_report("a", {"delta": _delta(0, {"ready": 2}), "drained": True, "capped": True})
    fleet.on_report("b", {"delta": {}, "drained": True, "capped": True,
                          "unresolved": [["req-1", None], ["req-2", "s-2"]],
                          "lost": ["req-3"], "lost_creates": 2})  # fmt: skip
    assert fleet.drained() and fleet.capped() and fleet.in_flight() == 0
    unresolved = fleet.unresolved()
    assert unresolved.open == {"req-1": None, "req-2": "s-2"}
    assert unresolved.lost == {"req-3"} and unresolved.lost_creates == 2
    assert fleet.refused() is None


def test_a_refusal_shipped_by_any_worker_stops_the_ladder():
    fleet, _ = _fleet("a", "b")
    fleet.start({}, None)
    fleet.on_report("b", {"delta": {}, "refused": "the provider refused the API key (401)"})
    assert fleet.refused() == "the provider refused the API key (401)"
    assert not fleet.capped()


def test_a_lost_worker_is_named_and_its_open_journeys_end_aborted():
    fleet, runner = _fleet("a", "b")
    fleet.start({}, None)
    fleet.on_report("a", {"delta": _delta(4, {"ready": 1})})
    fleet.on_report("b", {"delta": _delta(1, {"ready": 1}), "drained": True})
    runner.clients["a"].state = MISSING
    runner.clients["b"].state = MISSING  # drained, then stopped: done, not lost
    assert fleet.lost() == ["a"]
    assert fleet.drained()  # only live workers are waited for
    assert fleet.fix_lost() == ["a"]
    journeys, outcomes = fleet.recorder.totals()
    assert journeys == 5 and outcomes["aborted"] == 3 and outcomes["ready"] == 2
    assert fleet.recorder.invariant_violations() == []
    runner.clients["b"].state = "running"
    assert fleet.lost() == ["a"]  # fixed: the exit code, the aborts and the file agree


@pytest.mark.parametrize(("cap", "quota"), [(None, None), (10, 0)])
def test_a_late_worker_is_set_up_on_the_current_step(cap, quota):
    fleet, runner = _fleet("a")
    fleet.start({"run_id": "r"}, cap)
    runner.clients["late"] = Client("late")
    fleet.maintain({"run_id": "r"}, 3, draining=False)
    assert runner.sent[-2:] == [
        (MSG_SETUP, {"run_id": "r", "quota": quota, "share": None}, "late"),
        (MSG_STEP, {"index": 3}, "late"),
    ]  # fmt: skip
    assert fleet.size() == 2
    sent = len(runner.sent)
    fleet.maintain({"run_id": "r"}, 3, draining=False)
    assert len(runner.sent) == sent  # once


def test_no_worker_is_admitted_while_draining():
    fleet, runner = _fleet("a")
    fleet.start({}, None)
    runner.clients["late"] = Client("late")
    fleet.maintain({}, 0, draining=True)
    assert [c for _, _, c in runner.sent] == ["a"]
