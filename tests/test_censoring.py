"""Intervals that certainly hold the truth: per journey (bench.core.censoring), binned
(bench.record.censored), recorded and shipped (bench.record.recorder), and read back as
percentile estimates with certain ranges (bench.analyse.intervals)."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_results import make_document

from bench.analyse import intervals
from bench.core.journey import Call, Observation, duration_intervals, summarise
from bench.core.outcomes import Outcome
from bench.record import censored
from bench.record.recorder import Recorder
from bench.record.results import ResultsError, parse_results, recorder_from_document

US = 1_000_000


def obs(sent, phase, status="processing", latency=0.0, session=False):
    return Observation(Call(sent, sent + latency), status, phase, session=session)


CREATE = Call(0.0, 0.002)


def test_every_phase_seen():
    walk = [
        obs(0.1, "queued", "pending"),
        obs(0.3, "provisioning"),
        obs(1.5, "provisioning"),
        obs(1.7, "configuring"),
        obs(2.0, "configuring"),
        obs(2.2, None, "ready", session=True),
    ]
    got = duration_intervals(CREATE, walk)
    # queued: from the create [0, 0.002] to the change in [0.1, 0.3].
    assert got["queued"] == pytest.approx((0.098 * US, 0.3 * US))
    # provisioning: began in [0.1, 0.3], ended in [1.5, 1.7].
    assert got["provisioning"] == pytest.approx((1.2 * US, 1.6 * US))
    assert got["configuring"] == pytest.approx((0.3 * US, 0.7 * US))
    # ready: from the create (sent 0, answered 0.002) to the change in [2.0, 2.2].
    assert got["ready"] == pytest.approx((1.998 * US, 2.2 * US))


def test_a_phase_no_poll_saw_gets_zero_to_its_window():
    # Configuring began and ended between the polls at 1.0 and 1.25.
    walk = [obs(0.2, "provisioning"), obs(1.0, "provisioning"), obs(1.25, None, "ready")]
    got = duration_intervals(CREATE, walk)
    assert got["configuring"] == pytest.approx((0.0, 0.25 * US))
    # provisioning: at least from its first poll to its last, at most create to ready.
    assert got["provisioning"] == pytest.approx((0.8 * US, 1.25 * US))
    # queued ended before the first poll: at least 0, at most until it was answered.
    assert got["queued"] == pytest.approx((0.0, 0.2 * US))
    # The midpoint estimates know nothing of configuring: it is "unobserved" there.
    result = summarise(create=CREATE, outcome=Outcome.READY, observations=walk)
    assert "configuring" in result.unobserved and "configuring" not in result.samples
    assert result.intervals == got


def test_time_in_no_known_phase_may_hold_a_phase_next_to_it():
    # provisioning, then answers naming no phase, then configuring: provisioning may
    # have run on into the unknown span, configuring may have started in it.
    walk = [
        obs(0.5, "provisioning"),
        obs(1.0, None),
        obs(1.5, "configuring"),
        obs(2.0, None, "ready"),
    ]
    got = duration_intervals(CREATE, walk)
    # Each seen by one poll only: at least nothing, at most from the end of the phase
    # before to the start of the phase after.
    assert got["provisioning"] == pytest.approx((0.0, 1.5 * US))
    assert got["configuring"] == pytest.approx((0.0, 1.5 * US))


def test_no_interval_unless_ready():
    walk = [obs(0.5, "provisioning"), obs(1.0, None, "failed")]
    assert duration_intervals(CREATE, walk) == {}
    assert summarise(create=CREATE, outcome=Outcome.FAILED, observations=walk).intervals == {}


@st.composite
def journeys(draw):
    """A true walk (create instant, phase ends) and polls at random instants and latencies."""
    created = draw(st.floats(0.0, 0.01))
    lengths = [draw(st.floats(0.0, 1.0)) for _ in range(3)]
    ends = [created + sum(lengths[: i + 1]) for i in range(3)]
    sends = sorted(draw(st.lists(st.floats(0.0, 4.0), min_size=1, max_size=20)))
    latency = draw(st.floats(0.0, 0.02))
    return created, lengths, ends, sends, latency


@given(journeys())
@settings(max_examples=300, deadline=None)
def test_the_intervals_hold_the_truth(case):
    created, lengths, ends, sends, latency = case
    create = Call(0.0, created + latency)  # the server took it at `created`
    walk = []
    for sent in sends:
        answered = sent + latency / 2  # the server's instant inside the call
        if sent < create.received:
            continue
        if answered >= ends[2]:
            walk.append(obs(sent, None, "ready", latency))
            break
        phase = "queued" if answered < ends[0] else "provisioning" if answered < ends[1] \
            else "configuring"
        walk.append(obs(sent, phase, "pending" if phase == "queued" else "processing", latency))
    else:
        return  # never saw ready
    got = duration_intervals(create, walk)
    true = dict(zip(("queued", "provisioning", "configuring"), lengths, strict=True))
    true["ready"] = ends[2] - created
    for metric, value in true.items():
        lo, hi = got[metric]
        assert lo - 1e-3 <= value * US <= hi + 1e-3, (metric, value, got)


# --- the grid ---------------------------------------------------------------------------


@given(st.floats(0, 3_000_000_000), st.floats(0, 1_000_000_000))
def test_binning_only_widens_and_by_little(lower, width):
    pair = censored.bin_interval(lower, lower + width)
    if lower + width > censored.HIGHEST_US:
        assert pair is None
        return
    assert pair is not None
    lo, hi = pair
    assert lo <= lower and hi >= lower + width
    # Each end moves by less than one step: a 32nd of the width or 1/4096 of the value.
    slack = max(width / censored.RELATIVE_TO_WIDTH,
                (lower + width) / censored.RELATIVE_TO_VALUE, 1.0)
    assert lower - lo <= slack and hi - (lower + width) <= slack


def test_grid_steps():
    # A 0.25 s interval near 2 s: 4096 us steps; a 10 ms one: 256 us; exact: 1 us
    # until the value's own 1/4096 takes over.
    assert censored.step_for(1_900_000, 2_150_000) == 4096
    assert censored.bin_interval(1_900_000, 2_150_000) == (1_896_448, 2_150_400)
    assert censored.step_for(2_000_000, 2_010_000) == 256
    assert censored.step_for(30_000, 30_000) == 4
    assert censored.step_for(100, 100) == 1
    assert censored.bin_interval(-5, 10) == (0, 10)


# --- recorded, shipped, written, read -------------------------------------------------


def ready_result(create, walk):
    return summarise(create=create, outcome=Outcome.READY, observations=walk,
                     poll_calls=[o.call for o in walk])


def test_recorder_counts_merge_by_addition_and_round_trip():
    walk = [obs(0.2, "provisioning"), obs(1.0, "configuring"), obs(1.5, None, "ready")]
    one, two, both = Recorder(), Recorder(), Recorder()
    for rec in (one, two, both):
        rec.journey_started(0, False)
        rec.journey_finished(0, False, ready_result(CREATE, walk))
    both.journey_started(0, False)
    both.journey_finished(0, False, ready_result(CREATE, walk))
    merged = Recorder()
    merged.merge_wire(one.take_delta())
    merged.merge_wire(two.take_delta())
    assert merged.to_wire() == both.to_wire()
    wire = both.to_wire()["0"]["measured"]["censored"]
    assert set(wire) == {"queued", "provisioning", "configuring", "ready"}
    assert all(n == 2 for text in wire.values() for _, _, n in censored.rows(text))


def test_results_file_keeps_and_validates_the_intervals():
    walk = [obs(0.2, "provisioning"), obs(1.0, "configuring"), obs(1.5, None, "ready")]
    rec = Recorder()
    rec.journey_started(0, False)
    rec.journey_finished(0, False, ready_result(CREATE, walk))
    doc = make_document(rec)
    loaded = parse_results(orjson.dumps(doc))
    assert loaded.steps[0]["measured"]["censored"] == rec.to_wire()["0"]["measured"]["censored"]
    # Back to a recorder: the same intervals.
    assert recorder_from_document(loaded).to_wire() == rec.to_wire()
    for bad, message in (
        ("5:3:1", "lower <= upper"),
        ("1:2:0", "count >= 1"),
        ("1:2", "integers"),
        ("1:-2:1", "integers"),
        ([[1, 2, 1]], "expected a string"),
    ):
        broken = orjson.loads(orjson.dumps(doc))
        broken["steps"][0]["measured"]["censored"]["ready"] = bad
        with pytest.raises(ResultsError, match=message):
            parse_results(orjson.dumps(broken))


# --- estimates ------------------------------------------------------------------------


def test_certain_ranges_hold_and_the_method_follows_what_the_polls_missed():
    rng = random.Random(3)
    truth = {"short": [], "long": []}
    counts: dict[str, Counter] = {"short": Counter(), "long": Counter()}
    for _ in range(2000):
        poll = rng.uniform(0, 250_000)
        short = rng.uniform(10_000, 40_000)  # us: shorter than most first polls
        truth["short"].append(short)
        pair = (0, poll) if poll >= short else (poll, poll + 250_000)
        counts["short"][censored.bin_interval(*pair)] += 1
        long = rng.lognormvariate(14.3, 0.3)  # ~1.6 s
        truth["long"].append(long)
        offset = rng.uniform(0, 250_000)
        counts["long"][censored.bin_interval(long - offset, long - offset + 250_000)] += 1
    for name, expected in (("short", intervals.TURNBULL), ("long", intervals.MIDPOINT)):
        est = intervals.estimate(counts[name], (0.5, 0.9, 0.99))
        assert est is not None and est.method == expected and est.count == 2000
        ordered = sorted(truth[name])
        for q in (0.5, 0.9, 0.99):
            true_q = ordered[-(-int(q * 2000 * 1000) // 1000) - 1]
            lo, hi = est.certain[q]
            assert lo <= true_q <= hi
            assert abs(est.quantiles[q] - true_q) < 62_500, (name, q)  # a quarter of 250 ms
    assert intervals.estimate({}, (0.5,)) is None
