"""The report with recorded intervals: which estimate each metric gets, the note and the table
that say so, and files without intervals read as before."""

from __future__ import annotations

import random
from typing import Any

from bench.analyse.intervals import MIDPOINT, TURNBULL
from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.present.report.data import run_data
from bench.present.report.html import run_section
from bench.present.report.markdown import summary_markdown
from bench.present.report.tables import accuracy_rows, estimation_note
from bench.present.report.warnings import warnings_for
from bench.record.recorder import Recorder
from bench.record.results import StepInfo, build_document, parse_results
from bench.record.results import dumps as dump_results

RUN: dict[str, Any] = {
    "id": "intervals-test",
    "release": "v-test",
    "target": {"kind": "simulator", "host": None},
    "started_at": "2026-01-01T00:00:00+00:00",
    "ended_at": "2026-01-01T00:01:00+00:00",
    "duration_s": 60.0,
}
CONFIG: dict[str, Any] = {"poll_interval_s": 0.25, "ladder": [1, 2], "step_time_s": 10.0,
                          "settle_s": 2.0}
US = 1_000_000


def journey(rng: random.Random, *, intervals: bool) -> tuple[JourneyResult, dict[str, float]]:
    """A ready journey polled every 0.25 s from a random phase: queued (10-40 ms) is usually
    over before the first poll; ready (~2 s) is bracketed 0.25 s wide."""
    queued = rng.uniform(0.010, 0.040)
    ready = 1.5 + rng.expovariate(2.0)
    first = rng.uniform(0.0, 0.25)
    result = JourneyResult(Outcome.READY, {
        "queued": [(first / 2 if first > queued else first + 0.125) * US],
        "ready": [(ready + rng.uniform(-0.125, 0.125)) * US],
    })
    if intervals:
        grid = first + 0.25 * int((ready - first) / 0.25)
        result.intervals = {
            "queued": (0.0, first * US) if first > queued else (first * US, (first + 0.25) * US),
            "ready": (grid * US, (grid + 0.25) * US),
        }
    return result, {"queued": queued, "ready": ready}


def document(intervals: bool) -> dict[str, Any]:
    rng = random.Random(4)
    recorder = Recorder()
    for index in range(2):
        for _ in range(300):
            result, _ = journey(rng, intervals=intervals)
            recorder.journey_started(index, False)
            recorder.journey_finished(index, False, result)
    steps = [StepInfo(i, t, 10.0 * i, 10.0 * (i + 1)) for i, t in enumerate((1, 2))]
    return build_document(run=RUN, config=CONFIG, steps=steps, recorder=recorder, cleanup={})


def load(doc: dict[str, Any]):
    return run_data(parse_results(dump_results(doc)))


def test_each_metric_gets_the_estimate_its_intervals_call_for():
    data = load(document(intervals=True))
    assert data.estimates["queued"].method == TURNBULL  # missed in ~90 % of journeys
    assert data.estimates["ready"].method == MIDPOINT
    queued = data.merged["queued"]
    # Turnbull's estimate: the 10-40 ms phase, not the midpoints' ~0.1 s; no order-statistic
    # interval, as it is not a sample.
    assert 15_000 < queued.quantiles[0.5] < 35_000
    assert queued.intervals[0.5] is None
    assert queued.count == 600
    # Per step as well.
    assert all(step.estimates["queued"].method == TURNBULL for step in data.steps)
    assert all(step.metrics["queued"].count == 300 for step in data.steps)
    # The certain range holds the estimate.
    for est in data.estimates.values():
        for q, (lo, hi) in est.certain.items():
            assert lo <= est.quantiles[q] <= hi


def test_the_report_says_how_and_within_what():
    data = load(document(intervals=True))
    note = estimation_note(data)
    assert note is not None and "Turnbull" in note and "queued" in note
    rows = {row[0]: row for row in accuracy_rows(data)}
    assert rows["queued"][1] == TURNBULL and rows["ready"][1] == MIDPOINT
    assert rows["ready"][2] == "600"
    html = run_section(data, warnings_for(data), [], 1)
    assert "How ready and phase times were estimated" in html and "certain range" in html
    assert "Turnbull" in summary_markdown([(data, warnings_for(data))])


def test_results_without_intervals_read_as_before():
    data = load(document(intervals=False))
    assert data.estimates == {}
    assert estimation_note(data) is None
    assert data.merged["queued"].intervals[0.5] is not None  # the midpoint histogram's CI
    html = run_section(data, warnings_for(data), [], 1)
    assert "How ready and phase times were estimated" not in html
