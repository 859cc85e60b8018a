"""Capacity at an SLO and the knee, checked exactly on hand-built results documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bench.analyse.capacity import (
    FAILURE_OUTCOMES,
    SLO,
    capacity_at_slo,
    failure_counts,
    failure_rate,
    knee,
    knee_from_medians,
)
from bench.core.journey import JourneyResult
from bench.core.outcomes import OUTCOMES, Outcome
from bench.record.recorder import Recorder
from bench.record.results import Results, StepInfo, build_document

RUN: dict[str, Any] = {
    "id": "cap-test",
    "release": "v-test",
    "target": {"kind": "simulator", "host": "http://127.0.0.1:1"},
    "started_at": "2026-01-01T00:00:00+00:00",
    "ended_at": "2026-01-01T00:01:00+00:00",
    "duration_s": 60.0,
}
CONFIG: dict[str, Any] = {"poll_interval_s": 0.25, "ladder": [], "step_time_s": 10.0,
                          "settle_s": 0.0}
CLEANUP: dict[str, Any] = {}


def make_results(steps: Sequence[tuple[int, Sequence[float], Mapping[str, int]]]) -> Results:
    """One step per (target, ready times in seconds, non-ready outcome counts)."""
    recorder = Recorder()
    infos = []
    for index, (target, ready_s, others) in enumerate(steps):
        infos.append(StepInfo(index, target, 10.0 * index, 10.0 * (index + 1)))
        for value in ready_s:
            recorder.journey_started(index, False)
            recorder.journey_finished(
                index, False, JourneyResult(Outcome.READY, {"ready": [value * 1e6]})
            )
        for name, n in others.items():
            for _ in range(n):
                recorder.journey_started(index, False)
                recorder.journey_finished(index, False, JourneyResult(Outcome(name)))
    config = {**CONFIG, "ladder": [t for t, _, _ in steps]}
    doc = build_document(run=RUN, config=config, steps=infos, recorder=recorder, cleanup=CLEANUP)
    return Results(document=doc)


def test_failure_rate_excludes_aborted_and_counts_every_other_non_ready_outcome() -> None:
    outcomes = dict.fromkeys(OUTCOMES, 1)  # one of each: 13 outcomes
    # aborted and dropped on neither side (the harness cut or never started them);
    # ready decided, not failed
    assert failure_counts(outcomes) == (10, 11)
    assert failure_rate(outcomes) == pytest.approx(10 / 11)
    assert set(FAILURE_OUTCOMES) == set(OUTCOMES) - {"ready", "aborted", "dropped"}
    assert failure_rate({"aborted": 3}) is None
    assert failure_rate({"ready": 3, "aborted": 5}) == 0.0


def test_capacity_is_highest_contiguous_passing_level() -> None:
    # p95 of 20 samples = the 19th smallest.
    fast = [1.0] * 19 + [50.0]  # p95 = 1 s even though the max is 50 s
    slow = [1.0] * 18 + [40.0, 40.0]  # p95 = 40 s
    results = make_results([
        (1, fast, {}),
        (2, fast, {"create_rejected": 0}),
        (4, fast, {"timeout": 1, "aborted": 7}),  # 1/21 failed = 4.76 %
        (8, slow, {}),
        (16, fast, {}),  # passes again above a failure: not capacity
    ])
    slo = SLO(ready_limit_s=30.0, failure_rate_limit=0.05)
    cap = capacity_at_slo(results, slo)
    assert [v.passes for v in cap.steps] == [True, True, True, False, True]
    assert cap.concurrency == 4
    assert cap.first_failure == 8
    assert cap.highest_passing == 16
    step4 = cap.steps[2]
    assert (step4.decided, step4.failures, step4.ready_samples) == (21, 1, 20)
    assert step4.failure_rate == pytest.approx(1 / 21)
    assert step4.ready_quantile_s == pytest.approx(1.0, rel=1e-3)
    assert "p95 ready 40 s > 30 s" in cap.steps[3].reason

    strict = capacity_at_slo(results, SLO(ready_limit_s=30.0, failure_rate_limit=0.04))
    assert strict.concurrency == 2
    assert "failure rate 4.762 % > 4 %" in strict.steps[2].reason


def test_failure_rate_at_the_limit_passes() -> None:
    results = make_results([(1, [1.0] * 9, {"failed": 1})])
    cap = capacity_at_slo(results, SLO(ready_limit_s=5.0, failure_rate_limit=0.1))
    assert cap.steps[0].failure_rate == pytest.approx(0.1)
    assert cap.concurrency == 1


def test_zero_ready_sessions_fail_and_empty_steps_are_not_evaluated() -> None:
    results = make_results([(1, [], {}), (2, [1.0], {}), (4, [], {"failed": 3})])
    cap = capacity_at_slo(results, SLO(ready_limit_s=5.0, failure_rate_limit=0.5))
    assert [v.passes for v in cap.steps] == [None, True, False]
    assert cap.steps[0].reason.startswith("no decided journeys")
    assert "no session became ready" in cap.steps[2].reason
    assert cap.concurrency == 2


def test_no_level_passes_gives_none() -> None:
    results = make_results([(1, [100.0] * 5, {})])
    cap = capacity_at_slo(results, SLO(ready_limit_s=10.0, failure_rate_limit=0.5))
    assert cap.concurrency is None
    assert cap.highest_passing is None
    assert cap.first_failure == 1


def test_slo_validates_and_describes_itself() -> None:
    assert SLO().describe() == "p95 ready <= 5 s and failure rate <= 1 %"
    with pytest.raises(ValueError):
        SLO(ready_limit_s=0)
    with pytest.raises(ValueError):
        SLO(failure_rate_limit=1.5)
    with pytest.raises(ValueError):
        SLO(ready_quantile=1.0)


def test_knee_from_medians() -> None:
    assert knee_from_medians({1: 2.0, 2: 2.2, 4: 3.0, 8: 3.1, 16: 9.0}) == 8
    assert knee_from_medians({1: 2.0, 2: 2.2, 4: 3.01}) == 4
    assert knee_from_medians({1: 2.0, 2: 2.9}) is None  # never above 1.5x
    assert knee_from_medians({1: 2.0}) is None
    assert knee_from_medians({4: 2.0, 1: 1.0}, factor=1.9) == 4  # order of the mapping is not used
    with pytest.raises(ValueError):
        knee_from_medians({1: 1.0, 2: 2.0}, factor=1.0)


def test_knee_on_results_merges_steps_of_one_level() -> None:
    results = make_results([
        (1, [2.0] * 5, {}),
        (2, [2.0] * 5, {}),
        (2, [10.0] * 6, {}),  # merged with the other level-2 step: median 10 s
        (4, [], {"failed": 2}),  # no ready samples: no median, no effect
    ])
    assert knee(results) == 2
