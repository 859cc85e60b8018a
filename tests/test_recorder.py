"""HDR recorder: per-(step, metric) histograms, measured vs warm-up, wire deltas, invariants."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.record.recorder import (
    HIGHEST_US,
    Part,
    Recorder,
    decode_histogram,
    encode_histogram,
    merged_histogram,
    new_histogram,
)

PERCENTILES = (0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0)


def result(
    outcome: Outcome = Outcome.READY,
    *,
    http_status: int | None = None,
    unobserved: tuple[str, ...] = (),
    anomalies: int = 0,
    release_failed: bool = False,
    **samples: list[float],
) -> JourneyResult:
    return JourneyResult(
        outcome=outcome,
        samples={k: list(v) for k, v in samples.items()},
        unobserved=list(unobserved),
        http_status=http_status,
        anomalies=anomalies,
        release_failed=release_failed,
    )


def histogram_view(encoded: str) -> dict[str, Any]:
    """What a histogram says, read back from its wire encoding."""
    h = decode_histogram(encoded)
    return {
        "total": h.get_total_count(),
        "min": h.get_min_value(),
        "max": h.get_max_value(),
        "percentiles": [h.get_value_at_percentile(p) for p in PERCENTILES],
        "counts": list(h.counts),
    }


def view(wire: dict[str, Any]) -> dict[str, Any]:
    """A recorder's wire form with histograms replaced by what they say."""
    out: dict[str, Any] = {}
    for index, step in wire.items():
        out[index] = {"busy_seconds": step["busy_seconds"]}
        for label in ("measured", "warmup"):
            part = dict(step[label])
            part["histograms"] = {m: histogram_view(e) for m, e in part["histograms"].items()}
            out[index][label] = part
    return out


def random_journeys(seed: int, n: int) -> list[tuple[int, bool, JourneyResult, float]]:
    """(step, warmup, result, busy seconds) for n synthetic journeys."""
    rng = random.Random(seed)
    journeys = []
    outcomes = list(Outcome)
    for _ in range(n):
        outcome = rng.choice(outcomes)
        samples: dict[str, list[float]] = {"create": [rng.uniform(1_000, 900_000)]}
        if outcome is Outcome.READY:
            samples["ready"] = [rng.lognormvariate(14, 1)]
            samples["ready_seen"] = [samples["ready"][0] + rng.uniform(0, 250_000)]
            samples["queued"] = [rng.uniform(0, 5e6)]
            samples["poll"] = [rng.uniform(500, 80_000) for _ in range(rng.randint(1, 8))]
            samples["release"] = [rng.uniform(100, 10_000)]
        journeys.append(
            (
                rng.randint(0, 3),
                rng.random() < 0.2,
                result(
                    outcome,
                    http_status=rng.choice([400, 402, 429, 500])
                    if outcome is Outcome.CREATE_REJECTED
                    else None,
                    unobserved=("provisioning",) if rng.random() < 0.1 else (),
                    anomalies=int(rng.random() < 0.05),
                    release_failed=rng.random() < 0.05,
                    **samples,
                ),
                rng.uniform(0, 30),
            )
        )
    return journeys


def feed(recorder: Recorder, journeys: list[tuple[int, bool, JourneyResult, float]]) -> None:
    for step, warmup, res, busy in journeys:
        recorder.journey_started(step, warmup)
        recorder.journey_finished(step, warmup, res)
        recorder.add_busy(step, busy)


# --- recording ------------------------------------------------------------------------


def test_part_records_counts_outcomes_rejections_and_samples():
    part = Part()
    part.add_result(result(create=[1200.4], ready=[2_000_000.0], poll=[10.0, 20.0, 30.0]))
    part.add_result(result(Outcome.CREATE_REJECTED, http_status=429, create=[500.0]))
    part.add_result(result(Outcome.CREATE_REJECTED, http_status=402, create=[600.0]))
    part.add_result(result(Outcome.TIMEOUT, http_status=None, create=[700.0]))
    part.add_result(
        result(unobserved=("provisioning", "configuring"), anomalies=2, release_failed=True)
    )
    assert part.outcomes == Counter({"ready": 2, "create_rejected": 2, "timeout": 1})
    assert part.rejections == Counter({"429": 1, "402": 1})
    assert part.unobserved == Counter({"provisioning": 1, "configuring": 1})
    assert part.anomalies == 2 and part.release_errors == 1
    assert part.count("create") == 4 and part.count("poll") == 3 and part.count("ready") == 1
    assert part.count("queued") == 0
    assert part.histograms["create"].get_min_value() == 500
    assert part.journeys == 0  # started journeys are counted by journey_started


def test_rejection_code_counted_only_for_create_rejected():
    part = Part()
    part.add_result(result(Outcome.PROTOCOL_ERROR, http_status=500))
    assert part.rejections == Counter()


def test_values_are_rounded_to_whole_microseconds():
    part = Part()
    for v in (1.4, 1.6, 2.5):
        part.record("create", v)
    hist = part.histograms["create"]
    assert hist.get_count_at_value(1) == 1 and hist.get_count_at_value(2) == 2


@pytest.mark.parametrize("value", [-1.0, -0.6, -5e6, HIGHEST_US + 1, HIGHEST_US * 2.0, 1e15])
def test_out_of_range_is_counted_not_recorded(value):
    part = Part()
    part.record("ready", value)
    assert part.out_of_range == Counter({"ready": 1})
    assert part.count("ready") == 0


@pytest.mark.parametrize("value", [0.0, -0.4, 1.0, HIGHEST_US, HIGHEST_US + 0.4])
def test_range_edges_are_recorded(value):
    part = Part()
    part.record("ready", value)
    assert part.out_of_range == Counter()
    assert part.count("ready") == 1


def test_out_of_range_samples_from_a_result_do_not_reach_the_histogram():
    part = Part()
    part.add_result(result(ready=[-3.0, 5.0, 2 * HIGHEST_US]))
    assert part.count("ready") == 1 and part.out_of_range["ready"] == 2
    assert part.to_wire()["out_of_range"] == {"ready": 2}


def test_measured_and_warmup_are_kept_apart():
    rec = Recorder()
    rec.journey_started(1, warmup=True)
    rec.journey_finished(1, True, result(ready=[100.0]))
    rec.journey_started(1, warmup=False)
    rec.journey_finished(1, False, result(Outcome.FAILED, create=[5.0]))
    step = rec.steps[1]
    assert step.warmup.journeys == 1 and step.warmup.outcomes == Counter({"ready": 1})
    assert step.measured.journeys == 1 and step.measured.outcomes == Counter({"failed": 1})
    assert step.warmup.count("ready") == 1 and step.measured.count("ready") == 0
    assert set(rec.steps) == {1}


def test_busy_seconds_add_and_ignore_non_positive():
    rec = Recorder()
    rec.add_busy(2, 1.5)
    rec.add_busy(2, 2.25)
    rec.add_busy(2, 0.0)
    rec.add_busy(2, -4.0)
    rec.add_busy(3, 0.5)
    assert rec.steps[2].busy_seconds == 3.75
    assert rec.steps[3].busy_seconds == 0.5


# --- wire form, merge and delta -------------------------------------------------------


def test_encode_decode_round_trip():
    hist = new_histogram()
    for v in (1, 7, 7, 1234, 99_999, 3_000_000_000):
        hist.record_value(v)
    back = decode_histogram(encode_histogram(hist))
    assert back.get_total_count() == 6
    assert list(back.counts) == list(hist.counts)
    assert decode_histogram(encode_histogram(hist).encode("ascii")).get_total_count() == 6


def test_two_workers_merged_equal_one_recorder_that_saw_everything():
    journeys = random_journeys(seed=7, n=600)
    reference = Recorder()
    feed(reference, journeys)

    workers = [Recorder(), Recorder()]
    master = Recorder()
    # Workers ship several deltas over the run; the master merges them as they come.
    for start in range(0, len(journeys), 50):
        chunk = journeys[start : start + 50]
        feed(workers[0], chunk[::2])
        feed(workers[1], chunk[1::2])
        for worker in workers:
            # Through JSON as on the wire.
            master.merge_wire(orjson.loads(orjson.dumps(worker.take_delta())))

    expected, actual = reference.to_wire(), master.to_wire()
    exp_view, act_view = view(expected), view(actual)
    assert set(act_view) == set(exp_view) == {"0", "1", "2", "3"}
    for index in exp_view:
        assert act_view[index]["busy_seconds"] == pytest.approx(
            exp_view[index]["busy_seconds"], rel=1e-12
        )
        for label in ("measured", "warmup"):
            assert act_view[index][label] == exp_view[index][label], (index, label)
    assert master.invariant_violations() == []
    assert master.totals() == reference.totals()
    assert master.totals()[0] == 600


def test_merge_into_existing_histogram_adds_counts():
    a, b = Recorder(), Recorder()
    for v in (10.0, 20.0):
        a.journey_started(0, False)
        a.journey_finished(0, False, result(ready=[v]))
    b.journey_started(0, False)
    b.journey_finished(0, False, result(ready=[30.0], queued=[5.0]))
    a.merge_wire(b.to_wire())
    part = a.steps[0].measured
    assert part.count("ready") == 3 and part.count("queued") == 1
    assert part.histograms["ready"].get_max_value() == 30
    assert part.journeys == 3 and part.outcomes == Counter({"ready": 3})


def test_take_delta_returns_everything_since_the_last_call_then_resets():
    rec = Recorder()
    rec.journey_started(0, False)
    rec.journey_finished(0, False, result(ready=[1000.0]))
    rec.add_busy(0, 2.0)
    first = rec.take_delta()
    assert rec.steps == {}
    assert first["0"]["measured"]["journeys"] == 1
    assert first["0"]["busy_seconds"] == 2.0
    assert rec.take_delta() == {}

    rec.journey_started(0, False)
    rec.journey_finished(0, False, result(ready=[3000.0]))
    second = rec.take_delta()
    assert second["0"]["measured"]["journeys"] == 1
    assert second["0"]["busy_seconds"] == 0.0
    assert histogram_view(second["0"]["measured"]["histograms"]["ready"])["total"] == 1


def test_wire_form_lists_steps_in_order_and_is_json():
    rec = Recorder()
    for index in (10, 2, 0):
        rec.journey_started(index, False)
    wire = rec.to_wire()
    assert list(wire) == ["0", "2", "10"]
    assert orjson.loads(orjson.dumps(wire)) == wire


def test_merge_of_empty_or_partial_wire():
    rec = Recorder()
    rec.merge_wire({})
    assert rec.steps == {}
    rec.merge_wire({"4": {"measured": {"journeys": 2, "outcomes": {"ready": 2}}}})
    assert rec.steps[4].measured.journeys == 2
    assert rec.steps[4].warmup.is_empty()
    assert not rec.steps[4].measured.is_empty()


def test_merged_histogram_over_parts():
    p1, p2, p3 = Part(), Part(), Part()
    p1.record("ready", 100.0)
    p2.record("ready", 200.0)
    p2.record("ready", 300.0)
    p3.record("create", 5.0)
    total = merged_histogram([p1, p2, p3], "ready")
    assert total.get_total_count() == 3 and total.get_max_value() == 300
    assert merged_histogram([p3], "ready").get_total_count() == 0


# --- invariant ------------------------------------------------------------------------


def test_invariant_holds_when_outcomes_add_up():
    rec = Recorder()
    feed(rec, random_journeys(seed=3, n=50))
    assert rec.invariant_violations() == []


def test_invariant_violations_reported_per_step_and_part():
    rec = Recorder()
    for _ in range(3):
        rec.journey_started(0, False)
    rec.journey_finished(0, False, result())
    rec.journey_finished(0, False, result(Outcome.ABORTED))
    rec.journey_started(2, True)
    rec.journey_finished(2, True, result())
    rec.journey_finished(2, True, result(Outcome.TIMEOUT))
    assert rec.invariant_violations() == [
        "step 0 measured: 3 journeys started, 2 outcomes recorded",
        "step 2 warmup: 1 journeys started, 2 outcomes recorded",
    ]
    journeys, outcomes = rec.totals()
    assert journeys == 4
    assert outcomes == Counter({"ready": 2, "aborted": 1, "timeout": 1})
