"""Journey maths: observations -> phase durations with a stated error bound, outcomes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.core.journey import (
    METRICS,
    TIMED_PHASES,
    Call,
    Estimate,
    Observation,
    classify,
    phase_estimates,
    summarise,
)
from bench.core.outcomes import OUTCOMES, Outcome

US = 1_000_000.0

# Hand-computed reference journey.  Every call takes 0.2 s, so each observation
# instant is its send time + 0.1.
#   create  0.0 -> 0.2   instant 0.1  (counts as queued)
#   p1      0.5 -> 0.7   instant 0.6  pending/queued
#   p2      1.0 -> 1.2   instant 1.1  processing/provisioning
#   p3      1.5 -> 1.7   instant 1.6  processing/provisioning
#   p4      2.0 -> 2.2   instant 2.1  processing/configuring
#   p5      2.5 -> 2.7   instant 2.6  ready
CREATE = Call(0.0, 0.2)


def obs(sent: float, status: str, phase: str | None, latency: float = 0.2) -> Observation:
    return Observation(Call(sent, sent + latency), status, phase)


P1 = obs(0.5, "pending", "queued")
P2 = obs(1.0, "processing", "provisioning")
P3 = obs(1.5, "processing", "provisioning")
P4 = obs(2.0, "processing", "configuring")
P5 = obs(2.5, "ready", "ready")
ALL = [P1, P2, P3, P4, P5]


def assert_estimates(actual: dict[str, Estimate], expected: dict[str, tuple[float, float]]):
    assert set(actual) == set(expected)
    for name, (value, uncertainty) in expected.items():
        assert actual[name].value == pytest.approx(value, abs=1e-12), name
        assert actual[name].uncertainty == pytest.approx(uncertainty, abs=1e-12), name


def test_call_instant_and_latency():
    call = Call(1.0, 1.5)
    assert call.instant == 1.25 and call.latency == 0.5


def test_every_phase_observed():
    estimates, unobserved, regressions = phase_estimates(CREATE, ALL)
    # A boundary between calls a and b: mid(m_a, m_b) +- (half the gap + half the
    # slower call's latency, here 0.1).
    # queued:       start = create instant 0.1 +- 0.1 (half the create latency)
    #               end   = mid(0.6, 1.1) = 0.85 +- (0.25 + 0.1)  -> 0.75 +- 0.45
    # provisioning: 0.85 +- 0.35 -> mid(1.6, 2.1) = 1.85 +- 0.35  -> 1.00 +- 0.70
    # configuring:  1.85 +- 0.35 -> mid(2.1, 2.6) = 2.35 +- 0.35  -> 0.50 +- 0.70
    # ready_at:     2.35 +- 0.35
    assert_estimates(
        estimates,
        {
            "queued": (0.75, 0.45),
            "provisioning": (1.0, 0.7),
            "configuring": (0.5, 0.7),
            "ready_at": (2.35, 0.35),
        },
    )
    assert unobserved == [] and regressions == 0


def test_summarise_ready_journey_samples():
    polls = [o.call for o in ALL]
    release = Call(3.0, 3.05)
    result = summarise(
        create=CREATE, outcome=Outcome.READY, observations=ALL, poll_calls=polls, release=release
    )
    s = result.samples
    assert s["create"] == pytest.approx([200_000.0])
    assert s["poll"] == pytest.approx([200_000.0] * 5)
    assert s["release"] == pytest.approx([50_000.0])
    assert s["queued"] == pytest.approx([750_000.0])
    assert s["provisioning"] == pytest.approx([1_000_000.0])
    assert s["configuring"] == pytest.approx([500_000.0])
    # ready = estimated ready instant (2.35) - POST sent (0.0)
    assert s["ready"] == pytest.approx([2_350_000.0])
    # ready_seen = first ready answer received (2.7) - POST sent (0.0)
    assert s["ready_seen"] == pytest.approx([2_700_000.0])
    assert set(s) <= set(METRICS)
    assert result.outcome is Outcome.READY and result.unobserved == []


def test_ready_metrics_measure_from_post_sent_not_from_its_instant():
    create = Call(10.0, 10.4)  # instant 10.2
    observations = [obs(11.0, "processing", "configuring"), obs(11.5, "ready", None)]
    result = summarise(create=create, outcome=Outcome.READY, observations=observations)
    # ready_at = mid(11.1, 11.6) = 11.35; minus POST sent 10.0
    assert result.samples["ready"] == pytest.approx([1_350_000.0])
    assert result.samples["ready_seen"] == pytest.approx([1_700_000.0])


def test_uncertainty_is_half_the_bracketing_gaps_plus_half_a_round_trip():
    # Uneven gaps: queued seen at 0.6 and provisioning first at 3.6 (gap 3.0);
    # provisioning last at 3.6 and ready first at 4.1 (gap 0.5).
    create = Call(0.0, 0.4)  # instant 0.2, half-latency 0.2
    observations = [obs(0.5, "pending", "queued"), obs(3.5, "processing", "provisioning"),
                    obs(4.0, "ready", "ready")]  # fmt: skip
    estimates, unobserved, _ = phase_estimates(create, observations)
    assert_estimates(
        estimates,
        {
            # 0.2 +- 0.2 -> mid(0.6, 3.6) = 2.1 +- (1.5 + 0.1)
            "queued": (1.9, 1.8),
            # 2.1 +- 1.6 -> mid(3.6, 4.1) = 3.85 +- (0.25 + 0.1)
            "provisioning": (1.75, 1.95),
            "ready_at": (3.85, 0.35),
        },
    )
    assert unobserved == ["configuring"]


def test_skipped_phase_is_unobserved_and_neighbours_get_midpoints():
    observations = [P1, P4, P5]  # provisioning never seen
    estimates, unobserved, regressions = phase_estimates(CREATE, observations)
    # queued ends and configuring starts at mid(0.6, 2.1) = 1.35 +- (0.75 + 0.1)
    assert_estimates(
        estimates,
        {
            "queued": (1.25, 0.95),
            "configuring": (1.0, 1.2),
            "ready_at": (2.35, 0.35),
        },
    )
    assert unobserved == ["provisioning"] and regressions == 0

    result = summarise(create=CREATE, outcome=Outcome.READY, observations=observations)
    assert "provisioning" not in result.samples  # no fabricated sample
    assert result.unobserved == ["provisioning"]
    assert result.samples["queued"] == pytest.approx([1_250_000.0])
    assert result.samples["configuring"] == pytest.approx([1_000_000.0])


def test_straight_to_ready_leaves_middle_phases_unobserved():
    observations = [P5]
    estimates, unobserved, _ = phase_estimates(CREATE, observations)
    # queued runs from the create instant to mid(0.1, 2.6) = 1.35 +- (1.25 + 0.1)
    assert_estimates(estimates, {"queued": (1.25, 1.45), "ready_at": (1.35, 1.35)})
    assert unobserved == ["provisioning", "configuring"]


def test_phase_going_backwards_is_an_anomaly_and_the_walk_stays_monotone():
    backwards = [P1, P2, obs(1.5, "pending", "queued"), P4, P5]
    estimates, unobserved, regressions = phase_estimates(CREATE, backwards)
    assert regressions == 1
    # Same as if the regressing poll had said provisioning.
    assert estimates == phase_estimates(CREATE, ALL)[0]
    assert unobserved == []
    result = summarise(create=CREATE, outcome=Outcome.READY, observations=backwards)
    assert result.anomalies == 1


def test_several_regressions_are_all_counted():
    backwards = [P1, P4, obs(2.5, "processing", "provisioning"), obs(3.0, "pending", "queued"),
                 obs(3.5, "ready", "ready")]  # fmt: skip
    _, _, regressions = phase_estimates(CREATE, backwards)
    assert regressions == 2


def test_time_in_no_known_phase_is_unknown_not_queued():
    # Issue 10 (9): answers without progress or with a phase word we do not know used to
    # be dropped, and the time charged to the phase before them.  Boundaries (+- half
    # the gap + half a 0.2 s call): q->? 0.85 +- 0.35, ?->configuring 1.85 +- 0.35,
    # configuring->ready 2.35 +- 0.35.
    observations = [P1, obs(1.0, "processing", None), obs(1.5, "processing", "warming_up"), P4, P5]
    estimates, unobserved, regressions = phase_estimates(CREATE, observations)
    assert_estimates(
        estimates,
        {
            "queued": (0.75, 0.45),
            "unknown": (1.0, 0.7),
            "configuring": (0.5, 0.7),
            "ready_at": (2.35, 0.35),
        },
    )
    # provisioning may hide in the unknown span: it is not called unobserved
    assert unobserved == [] and regressions == 0


def test_a_journey_with_no_progress_at_all_is_queued_then_unknown():
    # pending = not yet picked up = queued (the doc); processing without a phase: unknown
    observations = [
        obs(0.5, "pending", None), obs(1.0, "processing", None), obs(1.5, "processing", None),
        obs(2.0, "ready", None),
    ]  # fmt: skip
    estimates, unobserved, _ = phase_estimates(CREATE, observations)
    assert_estimates(
        estimates, {"queued": (0.75, 0.45), "unknown": (1.0, 0.7), "ready_at": (1.85, 0.35)}
    )
    assert unobserved == []


def test_pending_without_a_phase_is_queued():
    observations = [obs(0.5, "pending", None), P2, P3, P4, P5]
    assert phase_estimates(CREATE, observations) == phase_estimates(CREATE, ALL)


def test_an_unknown_answer_between_two_of_one_phase_was_in_that_phase():
    rest = [obs(2.0, "processing", "provisioning"), obs(2.5, "processing", "configuring"),
            obs(3.0, "ready", "ready")]  # fmt: skip
    known = [P1, P2, obs(1.5, "processing", "provisioning"), *rest]
    hidden = [P1, P2, obs(1.5, "processing", "warming_up"), *rest]
    assert phase_estimates(CREATE, hidden) == phase_estimates(CREATE, known)
    assert "unknown" not in phase_estimates(CREATE, hidden)[0]


def test_the_phase_saying_ready_before_the_status_is_not_ready():
    # Issue 10 (8): the status decides.  configuring ends where the phase says ready
    # (2.1 -> 2.6: 2.35 +- 0.35); the request is ready where the status says so
    # (2.6 -> 3.1: 2.85 +- 0.35); in between it is in no phase the spec names.
    observations = [P1, P2, P3, P4, obs(2.5, "processing", "ready"), obs(3.0, "ready", "ready")]
    estimates, unobserved, _ = phase_estimates(CREATE, observations)
    assert estimates["ready_at"].value == pytest.approx(2.85)
    assert estimates["ready_at"].uncertainty == pytest.approx(0.35)
    assert estimates["configuring"].value == pytest.approx(2.35 - 1.85)
    assert estimates["unknown"].value == pytest.approx(0.5)
    assert unobserved == []


def test_ready_seen_waits_for_the_session():
    # Issue 10 (10): status ready before the session object exists; a client can act
    # only once the session is there.
    create = Call(0.0, 0.2)
    observations = [
        P1, P2, P4, Observation(Call(2.5, 2.7), "ready", "ready"),
        Observation(Call(3.0, 3.2), "ready", "ready", session=True),
    ]  # fmt: skip
    result = summarise(create=create, outcome=Outcome.READY, observations=observations)
    assert result.samples["ready_seen"] == [pytest.approx(3.2 * US)]
    assert result.samples["ready"] == [pytest.approx(2.35 * US)]


def test_ready_status_ends_the_walk_whatever_its_phase():
    observations = [P1, P2, P3, P4, obs(2.5, "ready", "configuring"), obs(3.0, "ready", None)]
    estimates, _, _ = phase_estimates(CREATE, observations)
    assert estimates == phase_estimates(CREATE, ALL)[0]


def test_censored_phase_is_neither_estimated_nor_unobserved():
    # The walk stopped in configuring (e.g. timeout): configuring has no end.
    estimates, unobserved, _ = phase_estimates(CREATE, [P1, P2, P3, P4])
    assert set(estimates) == {"queued", "provisioning"}
    assert unobserved == []
    estimates, unobserved, _ = phase_estimates(CREATE, [])
    assert estimates == {} and unobserved == []


def test_failure_ends_the_walk_without_a_boundary():
    estimates, unobserved, _ = phase_estimates(CREATE, [P1, P2, obs(1.5, "failed", None)])
    assert_estimates(estimates, {"queued": (0.75, 0.45)})
    assert unobserved == []


@pytest.mark.parametrize(
    "outcome",
    [o for o in Outcome if o is not Outcome.READY],
)
def test_non_ready_journeys_record_no_phase_samples(outcome):
    observations = [P1, P2, obs(1.5, "pending", "queued"), P4]
    polls = [o.call for o in observations]
    result = summarise(create=CREATE, outcome=outcome, observations=observations, poll_calls=polls)
    assert set(result.samples) == {"create", "poll"}
    assert result.estimates == {} and result.unobserved == []
    assert result.anomalies == 1  # regressions are still counted
    assert result.outcome is outcome


def test_create_never_answered():
    result = summarise(create=None, outcome=Outcome.CREATE_ERROR)
    assert result.samples == {} and result.http_status is None


def test_create_rejected_keeps_http_status_and_create_sample():
    result = summarise(create=CREATE, outcome=Outcome.CREATE_REJECTED, http_status=429)
    assert result.http_status == 429
    assert result.samples == {"create": pytest.approx([200_000.0])}


def test_poll_calls_without_observations_are_timed():
    polls = [Call(1.0, 1.25), Call(2.0, 2.5)]
    result = summarise(create=CREATE, outcome=Outcome.PROTOCOL_ERROR, poll_calls=polls)
    assert result.samples["poll"] == [250_000.0, 500_000.0]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], None),
        (["pending"], None),
        (["pending", "processing"], None),
        (["pending", "ready"], Outcome.READY),
        (["failed"], Outcome.FAILED),
        (["processing", "cancelled"], Outcome.CANCELLED),
        (["completed"], Outcome.COMPLETED_BEFORE_READY),
    ],
)
def test_classify(statuses, expected):
    observations = [obs(float(i), s, None) for i, s in enumerate(statuses)]
    assert classify(observations) is expected


def test_outcome_names():
    assert OUTCOMES == (
        "ready", "failed", "cancelled", "completed_before_ready", "timeout", "create_rejected",
        "create_error", "poll_error", "protocol_error", "connect_error", "navigate_error",
        "aborted", "dropped",
    )  # fmt: skip


# --- property: estimates bracket the truth --------------------------------------------
#
# Observation model, implemented below: the server answers each call (create included)
# with the state in force at one server-side instant x inside the call, s <= x <= r.
# Calls are sequential (a poll is sent after the previous answer), so server instants
# are increasing and a true phase walk shows up monotone.  The request's life (queued)
# starts at the create call's server instant x0, and the true boundaries are
# T1 = x0 + d_queued, T2 = T1 + d_provisioning, T3 (ready) = T2 + d_configuring.
#
# A boundary T lies between the server instants x_a < T <= x_b of the last call that
# saw the earlier phase and the first that saw a later one.  The harness estimates it
# at m = (m_a + m_b) / 2, where m_i = (s_i + r_i) / 2 is the client-side midpoint.
# Writing g = (m_b - m_a) / 2 for half the gap and h_i = (r_i - s_i) / 2 for half a
# call's latency:
#     T - m <= x_b - m <= (m_b + h_b) - m = g + h_b
#     m - T <= m - x_a <= m - (m_a - h_a) = g + h_a
# so |m - T| <= g + max(h_a, h_b), which is the uncertainty the harness states.  The
# start of queued is estimated at the create's midpoint with uncertainty h_create, so
# there |m - x0| <= h_create exactly.  A duration's uncertainty is the sum of its two
# boundaries'.  So in both models below (the server answers at each call's midpoint,
# or anywhere inside the call) the stated uncertainty bounds the error, with nothing
# added.  A float slack of 1e-9 s covers rounding.

SLACK = 1e-9
STATUS_OF = {
    "queued": "pending",
    "provisioning": "processing",
    "configuring": "processing",
    "ready": "ready",
}


def true_phase(x: float, boundaries: list[float]) -> str:
    """Phase in force at server instant x, given T1, T2, T3."""
    names = ["queued", "provisioning", "configuring", "ready"]
    index = sum(1 for t in boundaries if x >= t)
    return names[index]


durations = st.one_of(st.just(0.0), st.floats(0.0, 3.0))
fractions = st.floats(0.0, 1.0)


@st.composite
def journeys(draw, midpoint: bool):
    t0 = draw(st.floats(0.0, 1000.0))
    create_latency = draw(st.floats(0.001, 0.5))
    create = Call(t0, t0 + create_latency)
    x0 = create.instant if midpoint else t0 + draw(fractions) * create_latency
    d = [draw(durations) for _ in TIMED_PHASES]
    boundaries = [x0 + d[0], x0 + d[0] + d[1], x0 + d[0] + d[1] + d[2]]
    # A poll schedule (gap since the last answer, latency, where the server answers),
    # repeated until a poll sees ready.
    schedule = draw(
        st.lists(
            st.tuples(st.floats(0.0, 1.5), st.floats(0.01, 0.8), fractions), min_size=1,
            max_size=20,
        )
    )  # fmt: skip
    observations: list[Observation] = []
    instants: list[float] = []
    last = create.received
    for i in range(100_000):
        gap, latency, where = schedule[i % len(schedule)]
        call = Call(last + gap, last + gap + latency)
        x = call.instant if midpoint else call.sent + where * latency
        phase = true_phase(x, boundaries)
        observations.append(Observation(call, STATUS_OF[phase], phase))
        instants.append(x)
        last = call.received
        if phase == "ready":
            break
    return create, observations, instants, d, boundaries


def check_bracketing(journey):
    create, observations, instants, d, boundaries = journey
    result = summarise(
        create=create,
        outcome=Outcome.READY,
        observations=observations,
        poll_calls=[o.call for o in observations],
    )
    assert result.anomalies == 0
    # A middle phase is unobserved exactly when no poll's server instant fell in it.
    expected_unobserved = [
        name
        for k, name in enumerate(TIMED_PHASES)
        if k > 0 and not any(boundaries[k - 1] <= x < boundaries[k] for x in instants)
    ]
    assert result.unobserved == expected_unobserved
    for k, name in enumerate(TIMED_PHASES):
        if name in expected_unobserved:
            assert name not in result.estimates and name not in result.samples
            continue
        est = result.estimates[name]
        bound = est.uncertainty + SLACK
        assert abs(est.value - d[k]) <= bound, (name, est, d[k])
        assert result.samples[name] == [pytest.approx(max(est.value, 0.0) * US)]
    ready_at = result.estimates["ready_at"]
    assert abs(ready_at.value - boundaries[2]) <= ready_at.uncertainty + SLACK
    # The ready metric carries the same bound, measured from the POST being sent.
    true_ready = boundaries[2] - create.sent
    bound_us = (ready_at.uncertainty + SLACK) * US
    assert abs(result.samples["ready"][0] - true_ready * US) <= bound_us
    # ready_seen is when the client learnt it: never before the truth.
    assert result.samples["ready_seen"][0] >= true_ready * US - SLACK * US


@settings(max_examples=300, deadline=None)
@given(journeys(midpoint=True))
def test_estimates_within_uncertainty_of_truth_midpoint_model(journey):
    check_bracketing(journey)


@settings(max_examples=300, deadline=None)
@given(journeys(midpoint=False))
def test_estimates_within_uncertainty_of_truth_anywhere_model(journey):
    check_bracketing(journey)
