"""The run timeline and progress line (pure)."""

from __future__ import annotations

from bench.record.timeline import Timeline, Totals, progress_line


def test_totals_count_every_non_ready_outcome_but_aborted_as_failed():
    totals = Totals.of(
        12, {"ready": 5, "failed": 2, "create_rejected": 3, "timeout": 1, "aborted": 1}
    )
    assert totals == Totals(started=12, ready=5, failed=6)


def test_samples_hold_counts_per_interval():
    timeline = Timeline(1.0)
    timeline.sample(0.0, step=0, target=2, users=2, in_flight=2, totals=Totals(2, 0, 0))
    timeline.sample(1.0, step=0, target=2, users=2, in_flight=2, totals=Totals(7, 4, 1))
    timeline.sample(2.0, step=None, target=0, users=0, in_flight=0, totals=Totals(7, 6, 1))
    doc = timeline.to_document()
    assert doc["interval_s"] == 1.0
    assert [(s["started"], s["ready"], s["failed"]) for s in doc["samples"]] == [
        (2, 0, 0),
        (5, 4, 1),
        (0, 2, 0),
    ]
    assert doc["samples"][2]["step"] is None


def test_a_reset_never_yields_negative_counts():
    timeline = Timeline(1.0)
    timeline.sample(0.0, step=0, target=1, users=1, in_flight=1, totals=Totals(9, 8, 1))
    row = timeline.sample(1.0, step=0, target=1, users=1, in_flight=1, totals=Totals(2, 1, 0))
    assert (row["started"], row["ready"], row["failed"]) == (0, 0, 0)


def test_progress_line_during_a_step_and_the_drain():
    totals = Totals(120, 100, 3)
    line = progress_line(
        step=1, steps=5, target=2, elapsed_s=20.4, ladder_s=75.0, in_flight=2,
        totals=totals, draining=False,
    )  # fmt: skip
    assert line == (
        "progress: step 2/5 (2 concurrent), 0:55 left; in flight 2, "
        "started 120, ready 100, failed 3"
    )
    long = progress_line(
        step=0, steps=9, target=1, elapsed_s=0.0, ladder_s=3725.0, in_flight=1,
        totals=totals, draining=False,
    )  # fmt: skip
    assert "1:02:05 left" in long
    drain = progress_line(
        step=4, steps=5, target=16, elapsed_s=80.0, ladder_s=75.0, in_flight=7,
        totals=totals, draining=True,
    )  # fmt: skip
    assert drain.startswith("progress: draining in-flight journeys; in flight 7")
