"""The journey driver against a scripted transport and a fake clock: exact timings, no sockets.

Times start at 100 s and stay below 200 s, so a difference of two clock readings is
exact in binary floating point (Sterbenz) and ``now + (target - now) == target``: the
fake clock lands exactly where the driver asked, and timings can be compared with ``==``.
"""

from __future__ import annotations

import email.utils
import itertools
import random
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from bench.core.outcomes import Outcome
from bench.measure.api import Status
from bench.measure.driver import (
    ACCEPTED,
    MAX_WAIT,
    REFUSED,
    RELEASE_ATTEMPTS,
    UNKNOWN,
    Journey,
    JourneySettings,
    ProtocolViolation,
    Reply,
    create_body,
    parse_retry_after,
    parse_status,
)

T0 = 100.0
WALL0 = 1_790_000_000.0  # the wall clock at T0 (for HTTP-date Retry-After)
LAT = 0.0625  # default latency of every scripted call (exact in binary)
INTERVAL = 0.25
SEED = 1
US = 1_000_000.0


class StopJourney(Exception):
    """Stands in for Locust killing the user's greenlet mid-journey."""


class Clock:
    """A monotonic clock whose sleep advances time (and records what was asked)."""

    def __init__(self, t: float = T0, stop_at_sleep: int | None = None) -> None:
        self.t = t
        self.sleeps: list[float] = []
        self.stop_at_sleep = stop_at_sleep

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        if self.stop_at_sleep is not None and len(self.sleeps) + 1 == self.stop_at_sleep:
            raise StopJourney
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass(frozen=True)
class Sent:
    endpoint: str
    arg: Any
    sent: float
    received: float


class ScriptedTransport:
    """Answers each endpoint from its own list of replies, each optionally with a latency.

    An item is a ``Reply`` (answered after ``LAT``) or a ``(Reply, latency)`` pair.
    Calling an endpoint whose script is exhausted fails the test.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        create: list[Any] | None = None,
        status: list[Any] | None = None,
        release: list[Any] | None = None,
    ) -> None:
        self.clock = clock
        self.script = {
            "create": list(create if create is not None else [created()]),
            "status": list(status or []),
            "release": list(release if release is not None else [Reply(204)]),
        }
        self.calls: list[Sent] = []

    def _answer(self, endpoint: str, arg: Any) -> Reply:
        script = self.script[endpoint]
        if not script:
            raise AssertionError(f"unscripted {endpoint} call #{len(self.of(endpoint)) + 1}")
        item = script.pop(0)
        reply, latency = item if isinstance(item, tuple) else (item, LAT)
        sent = self.clock.t
        self.clock.t += latency
        self.calls.append(Sent(endpoint, arg, sent, self.clock.t))
        return reply

    def create(self, body: bytes) -> Reply:
        return self._answer("create", body)

    def status(self, request_id: str) -> Reply:
        return self._answer("status", request_id)

    def release(self, session_id: str) -> Reply:
        return self._answer("release", session_id)

    def of(self, endpoint: str) -> list[Sent]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def sends(self, endpoint: str = "status") -> list[float]:
        return [c.sent for c in self.of(endpoint)]


def ok(data: Any) -> Reply:
    return Reply(200, orjson.dumps({"data": data}))


def created(request_id: str = "req-1") -> Reply:
    return ok({"request_id": request_id, "status": "pending"})


def status(state: str, phase: str | None = None, **extra: Any) -> Reply:
    data: dict[str, Any] = {"status": state, **extra}
    if phase is not None:
        data["progress"] = {"current_phase": phase}
    return ok(data)


def pending(phase: str = "queued") -> Reply:
    return status("pending", phase)


def processing(phase: str = "provisioning") -> Reply:
    return status("processing", phase)


def ready(session_id: str = "sess-1") -> Reply:
    return status(
        "ready",
        "ready",
        session={"session_id": session_id, "cdp_url": "wss://x", "live_view_url": "https://y"},
    )


def settings(**overrides: Any) -> JourneySettings:
    values: dict[str, Any] = {
        "poll_interval": INTERVAL,
        "ready_timeout": 60.0,
        "hold": 0.0,
        "max_poll_errors": 3,
        "create_body": b'{"session":{"tags":["run-x"]}}',
    }
    values.update(overrides)
    return JourneySettings(**values)


class Harness:
    """A journey wired to a fake clock, a scripted transport and recording callbacks."""

    def __init__(
        self,
        *,
        create: list[Any] | None = None,
        status: list[Any] | None = None,
        release: list[Any] | None = None,
        rng: Any = None,
        stop_at_sleep: int | None = None,
        **setting_overrides: Any,
    ) -> None:
        self.clock = Clock(stop_at_sleep=stop_at_sleep)
        self.transport = ScriptedTransport(
            self.clock, create=create, status=status, release=release
        )
        self.release_scripted = release is not None
        self.events: list[tuple[str, str]] = []
        self.settings = settings(**setting_overrides)
        self.journey = Journey(
            transport=self.transport,
            settings=self.settings,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=rng if rng is not None else random.Random(SEED),
            on_request=lambda rid: self.events.append(("request", rid)),
            on_session=lambda sid: self.events.append(("session", sid)),
            on_released=lambda sid: self.events.append(("released", sid)),
            wall=lambda: WALL0 + (self.clock.t - T0),
        )

    def run(self):
        result = self.journey.run()
        for name, script in self.transport.script.items():
            if name != "release" or self.release_scripted:
                assert not script, f"{name} replies left unused: {script}"
        return result


class MaxRng:
    """A random source whose uniform(a, b) always returns b: the worst-case jitter/backoff."""

    def uniform(self, a: float, b: float) -> float:
        return b


def first_poll_jitter(seed: int = SEED, interval: float = INTERVAL) -> float:
    return random.Random(seed).uniform(0.0, interval)


def create_received() -> float:
    return T0 + LAT


# --- happy path and fixed-rate polling ------------------------------------------------


def test_ready_journey_timings_samples_and_callbacks():
    h = Harness(status=[pending(), processing("provisioning"), processing("configuring"), ready()])
    result = h.run()

    assert result.outcome is Outcome.READY
    create, *polls, release = h.transport.calls
    assert create.endpoint == "create" and create.arg == h.settings.create_body
    assert create.sent == T0 and create.received == T0 + LAT
    assert [p.arg for p in polls] == ["req-1"] * 4
    # First poll jittered over one interval from the create answer, with the injected rng.
    assert polls[0].sent == create.received + first_poll_jitter()
    # Then fixed rate from each send.
    for before, after in itertools.pairwise(polls):
        assert after.sent == before.sent + INTERVAL
    # No hold: the DELETE goes out as soon as ready is seen, with the session id.
    assert release.endpoint == "release" and release.arg == "sess-1"
    assert release.sent == polls[-1].received
    assert h.clock.sleeps == [polls[0].sent - create.received] + [INTERVAL - LAT for _ in polls[1:]]

    assert h.events == [("request", "req-1"), ("session", "sess-1"), ("released", "sess-1")]
    assert h.journey.request_id == "req-1" and h.journey.session_id == "sess-1"
    assert h.journey.released and not result.release_failed

    s = result.samples
    assert s["create"] == [LAT * US]
    assert s["poll"] == [LAT * US] * 4
    assert s["release"] == [LAT * US]
    assert s["ready_seen"] == [(polls[-1].received - T0) * US]
    assert set(s) == {
        "create", "poll", "release", "queued", "provisioning", "configuring", "ready",
        "ready_seen", "poll_lag",
    }  # fmt: skip
    assert s["poll_lag"] == [0.0] * 4  # every poll left exactly on schedule
    assert result.unobserved == [] and result.anomalies == 0


def test_slow_answers_poll_back_to_back_never_overlapping():
    slow = 0.375  # longer than the interval
    h = Harness(status=[(pending(), slow), (pending(), slow), (ready(), slow)])
    assert h.run().outcome is Outcome.READY
    polls = h.transport.of("status")
    assert polls[1].sent == polls[0].received
    assert polls[2].sent == polls[1].received
    assert h.clock.sleeps == [polls[0].sent - create_received()]


def test_first_poll_jitter_depends_on_the_rng():
    sends = []
    for seed in (3, 15):
        h = Harness(status=[ready()], rng=random.Random(seed))
        h.run()
        sends.append(h.transport.sends()[0])
        assert sends[-1] == create_received() + first_poll_jitter(seed)
        assert create_received() <= sends[-1] < create_received() + INTERVAL
    assert sends[0] != sends[1]


def test_ready_with_extra_fields_and_off_spec_session_status_is_tolerated():
    body = ok(
        {
            "status": "ready",
            "unknown_field": {"x": 1},
            "progress": {"current_phase": "ready", "percent": 100},
            "session": {"session_id": "s-9", "status": "running", "extra": True},
        }
    )
    h = Harness(status=[body])
    assert h.run().outcome is Outcome.READY
    assert h.transport.of("release")[0].arg == "s-9"


def test_hold_before_release():
    h = Harness(status=[ready()], hold=2.5)
    result = h.run()
    ready_poll, release = h.transport.of("status")[0], h.transport.of("release")[0]
    assert h.clock.sleeps[-1] == 2.5
    assert release.sent == ready_poll.received + 2.5
    assert result.outcome is Outcome.READY and result.samples["release"] == [LAT * US]


@pytest.mark.parametrize("code", [401, 404, 410])
def test_release_of_a_session_the_provider_no_longer_has_counts_as_ended(code):
    # Issue 10 (7): the spec answers an unknown or ended session with 401; others 404/410.
    h = Harness(status=[ready()], release=[Reply(code)])
    result = h.run()
    assert result.outcome is Outcome.READY
    assert h.journey.released and not result.release_failed
    assert ("released", "sess-1") in h.events


@pytest.mark.parametrize("code", [400, 403, 422])
def test_release_refused_for_good_flags_release_failed_at_once(code):
    h = Harness(status=[ready()], release=[Reply(code)])
    result = h.run()
    assert result.outcome is Outcome.READY
    assert result.release_failed and not h.journey.released
    assert result.samples["release"] == [LAT * US]
    assert ("released", "sess-1") not in h.events


@pytest.mark.parametrize("transient", [Reply(500), Reply(503), Reply(429), Reply(0), Reply(302)])
def test_release_retries_transient_failures_then_leaves_it_to_the_reaper(transient):
    h = Harness(status=[ready()], release=[transient] * RELEASE_ATTEMPTS, rng=MaxRng())
    result = h.run()
    assert result.release_failed and not h.journey.released
    assert len(h.transport.of("release")) == RELEASE_ATTEMPTS
    # Full-jitter backoff between tries (MaxRng: the top of each window), from the interval.
    releases = h.transport.of("release")
    waits = [b.sent - a.received for a, b in itertools.pairwise(releases)]
    assert waits == [INTERVAL * 2, INTERVAL * 4, INTERVAL * 8]
    if transient.status == 0:
        assert "release" not in result.samples  # no answer, nothing timed


def test_a_500_that_did_end_the_session_then_404_counts_as_ended():
    h = Harness(status=[ready()], release=[Reply(500), Reply(404)], rng=MaxRng())
    result = h.run()
    assert h.journey.released and not result.release_failed


def test_release_does_not_wait_out_a_long_retry_after():
    h = Harness(status=[ready()], release=[Reply(503, b"", "120")])
    result = h.run()
    assert result.release_failed and len(h.transport.of("release")) == 1


# --- Retry-After on 429 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("1.5", 1.5),  # decimal form
        ("2", 2.0),  # integer form
        (" 3 ", 3.0),
        ("45", 45.0),  # honoured in full (issue 10 (11): it was cut to 30 s)
        ("abc", INTERVAL),  # garbage: fall back to the interval
        ("-1", INTERVAL),
        ("nan", INTERVAL),
        ("", INTERVAL),
        (None, INTERVAL),
    ],
)
def test_poll_429_waits_retry_after_from_the_answer(header, wait):
    h = Harness(status=[pending(), Reply(429, b"", header), pending(), ready()])
    assert h.run().outcome is Outcome.READY
    s1, s2, s3, s4 = h.transport.sends()
    r2 = h.transport.of("status")[1].received
    assert s2 == s1 + INTERVAL
    assert s3 == r2 + wait
    assert s4 == s3 + INTERVAL  # fixed rate resumes


def test_poll_429_retry_after_as_an_http_date():
    # Issue 10 (11): the date form fell back to the poll interval.  The header names a
    # wall-clock second 5 s after the journey began; the wait is that minus now.
    header = email.utils.formatdate(WALL0 + 5, usegmt=True)
    h = Harness(status=[pending(), Reply(429, b"", header), pending(), ready()])
    assert h.run().outcome is Outcome.READY
    _, _, s3, _ = h.transport.sends()
    assert s3 == pytest.approx(T0 + 5.0, abs=1e-6)


def test_poll_503_retry_after_is_honoured():
    # Issue 10 (11): Retry-After on a 503 was ignored.  MaxRng: backoff at its top.
    h = Harness(status=[Reply(503, b"", "7"), ready()], rng=MaxRng())
    assert h.run().outcome is Outcome.READY
    r1 = h.transport.of("status")[0].received
    assert h.transport.sends()[1] == r1 + 7.0


def test_a_retry_after_past_the_deadline_ends_in_timeout_not_in_hammering():
    h = Harness(status=[Reply(429, b"", "1000")], ready_timeout=20.0)
    assert h.run().outcome is Outcome.TIMEOUT
    assert len(h.transport.of("status")) == 1 and h.clock.t == T0 + 20.0


def test_poll_429_retry_after_shorter_than_interval_never_speeds_polling_up():
    h = Harness(status=[Reply(429, b"", "0"), ready()])
    h.run()
    s1, s2 = h.transport.sends()
    assert s2 == s1 + INTERVAL


def test_429s_are_not_counted_as_poll_errors():
    h = Harness(status=[Reply(429, b"", "0.5")] * 5 + [ready()], max_poll_errors=1)
    result = h.run()
    assert result.outcome is Outcome.READY
    assert len(result.samples["poll"]) == 6  # 429 answers are timed status calls


def test_429_then_errors_still_count_consecutively():
    # A 429 neither counts as an error nor resets the count.
    h = Harness(
        status=[Reply(503), Reply(503), Reply(429, b"", "0"), Reply(503)], max_poll_errors=2
    )
    assert h.run().outcome is Outcome.POLL_ERROR


# --- backoff on transient errors ------------------------------------------------------


@pytest.mark.parametrize(("seed", "backoff_binds"), [(1, True), (15, False)])
def test_backoff_with_full_jitter_after_5xx(seed, backoff_binds):
    h = Harness(status=[Reply(503), Reply(500), pending(), ready()], rng=random.Random(seed))
    assert h.run().outcome is Outcome.READY
    ref = random.Random(seed)
    jitter = ref.uniform(0.0, INTERVAL)
    b1 = ref.uniform(0.0, INTERVAL * 2)  # after the 1st consecutive error
    b2 = ref.uniform(0.0, INTERVAL * 4)  # after the 2nd
    polls = h.transport.of("status")
    s = [p.sent for p in polls]
    r = [p.received for p in polls]
    assert s[0] == create_received() + jitter
    assert s[1] == max(s[0] + INTERVAL, r[0] + b1)
    assert (r[0] + b1 > s[0] + INTERVAL) is backoff_binds  # the case is the one meant
    assert s[2] == max(s[1] + INTERVAL, r[1] + b2)
    assert s[3] == s[2] + INTERVAL  # a good answer ends the backoff: no more draws


def test_backoff_doubles_and_is_capped():
    errors = 6
    h = Harness(
        status=[Reply(502)] * errors + [ready()],
        rng=MaxRng(),
        poll_interval=1.0,
        max_poll_errors=errors,
        ready_timeout=99.5,
    )
    assert h.run().outcome is Outcome.READY
    polls = h.transport.of("status")
    assert polls[0].sent == create_received() + 1.0  # jitter at its maximum
    waits = [after.sent - before.received for before, after in itertools.pairwise(polls)]
    assert waits == [2.0, 4.0, 8.0, 16.0, MAX_WAIT, MAX_WAIT]  # 32 and 64 capped


def test_network_errors_back_off_and_are_not_timed_as_polls():
    h = Harness(status=[Reply(0), Reply(0), ready()], rng=MaxRng())
    result = h.run()
    assert result.outcome is Outcome.READY
    s = h.transport.sends()
    r = [p.received for p in h.transport.of("status")]
    assert s[1] == r[0] + INTERVAL * 2 and s[2] == r[1] + INTERVAL * 4
    assert result.samples["poll"] == [LAT * US]  # only the answered call


@pytest.mark.parametrize("error", [Reply(503), Reply(0), Reply(404), Reply(204)])
def test_poll_error_after_max_poll_errors_plus_one_consecutive(error):
    h = Harness(status=[pending()] + [error] * 4, max_poll_errors=3)
    result = h.run()
    assert result.outcome is Outcome.POLL_ERROR
    assert len(h.transport.of("status")) == 5
    assert h.transport.of("release") == []


def test_good_answer_resets_the_error_count():
    h = Harness(
        status=[Reply(503)] * 3 + [pending()] + [Reply(0)] * 3 + [ready()], max_poll_errors=3
    )
    assert h.run().outcome is Outcome.READY


# --- deadline -------------------------------------------------------------------------


def test_timeout_at_the_deadline_never_polling_past_it():
    ready_timeout = 1.0
    deadline = T0 + ready_timeout
    expected = []
    send = create_received() + first_poll_jitter()
    while send < deadline:
        expected.append(send)
        send += INTERVAL
    h = Harness(status=[pending()] * len(expected), ready_timeout=ready_timeout)
    result = h.run()
    assert result.outcome is Outcome.TIMEOUT
    assert h.transport.sends() == expected
    assert 3 <= len(expected) <= 4
    assert all(s < deadline for s in h.transport.sends())
    assert h.clock.t == deadline  # it waits out the deadline, no longer
    assert result.samples["poll"] == [LAT * US] * len(expected)
    assert "ready" not in result.samples and "queued" not in result.samples
    assert h.transport.of("release") == []


def test_timeout_while_waiting_out_a_retry_after():
    h = Harness(status=[Reply(429, b"", "30")], ready_timeout=5.0)
    assert h.run().outcome is Outcome.TIMEOUT
    assert len(h.transport.of("status")) == 1
    assert h.clock.t == T0 + 5.0


def test_timeout_when_an_answer_arrives_after_the_deadline_without_sleeping():
    h = Harness(status=[(pending(), 2.0)], ready_timeout=1.0)
    assert h.run().outcome is Outcome.TIMEOUT
    assert h.clock.t == h.transport.of("status")[0].received > T0 + 1.0


def test_jitter_past_the_deadline_times_out_without_polling():
    h = Harness(status=[], rng=MaxRng(), ready_timeout=INTERVAL)  # deadline < first poll
    assert h.run().outcome is Outcome.TIMEOUT
    assert h.clock.t == T0 + INTERVAL


# --- protocol errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        status("running"),  # not a request status the API defines
        status("READY", "ready"),
        ok({"progress": {"current_phase": "queued"}}),  # no status
        Reply(200, b"not json"),
        Reply(200, b""),
        Reply(200, b"[1, 2]"),
        Reply(200, b'{"status": "pending"}'),  # no data envelope
        Reply(200, b'{"data": "pending"}'),
        status("ready", "ready", session={"session_id": ""}),
        status("ready", "ready", session={"cdp_url": "wss://x"}),
        status("ready", "ready", session={"session_id": 42}),
        status("ready", "ready", session="sess-1"),
        ok({"status": "pending", "progress": {"current_phase": 3}}),
        ok({"status": ["pending"]}),  # unhashable status
        ok({"status": {"a": 1}}),
    ],
)
def test_poll_protocol_error(reply):
    h = Harness(status=[pending(), reply])
    result = h.run()
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert result.samples["poll"] == [LAT * US] * 2  # the unusable answer was still timed
    assert h.events == [("request", "req-1")]
    assert h.transport.of("release") == []


@pytest.mark.parametrize(
    "reply",
    [
        ok({"status": "pending"}),  # no request_id
        ok({"request_id": ""}),
        ok({"request_id": 17}),
        Reply(200, b"{"),
        Reply(201, b"[]"),
        Reply(200, b'{"request_id": "r"}'),
    ],
)
def test_create_protocol_error(reply):
    h = Harness(create=[reply])
    result = h.run()
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert result.samples == {"create": [LAT * US]}
    assert h.events == []


def test_create_accepts_any_2xx():
    h = Harness(
        create=[Reply(201, orjson.dumps({"data": {"request_id": "r-2"}}))], status=[ready()]
    )
    assert h.run().outcome is Outcome.READY
    assert h.events[0] == ("request", "r-2")


def test_parse_status_values():
    assert parse_status(orjson.dumps({"data": {"status": "pending"}})) == Status(
        "pending", None, None
    )
    assert parse_status(
        orjson.dumps({"data": {"status": "processing", "progress": {"current_phase": "x"}}})
    ) == Status("processing", "x", None)
    assert parse_status(ready("s").body) == Status("ready", "ready", "s", "wss://x")
    assert parse_status(status("ready", "ready").body) == Status("ready", "ready", None)
    with pytest.raises(ProtocolViolation, match="unknown status 'running'"):
        parse_status(status("running").body)


# --- create outcomes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "fate"),
    [(400, REFUSED), (402, REFUSED), (403, REFUSED), (404, REFUSED), (500, REFUSED),
     (503, REFUSED), (502, UNKNOWN), (504, UNKNOWN), (301, REFUSED)],
)  # fmt: skip
def test_create_rejected_with_http_code(code, fate):
    h = Harness(create=[Reply(code, b'{"error": "Failed to run browser"}')])
    result = h.run()
    assert result.outcome is Outcome.CREATE_REJECTED
    assert result.http_status == code
    assert result.samples == {"create": [LAT * US]}
    # One poll interval's pause before the user's next journey (taken outside the
    # journey, which is over): no hot retry loop.
    assert h.journey.pause_s == INTERVAL and h.clock.sleeps == [] and h.events == []
    # Issue 10 (12): whether a session may exist (a gateway's 502 / 504: nobody knows).
    assert h.journey.fate == fate


@pytest.mark.parametrize("code", [401, 402, 403])
def test_a_refusal_no_later_journey_can_fix_says_so(code):
    body = orjson.dumps({"error": {"code": code, "message": "Invalid API Key\nsecond line"}})
    h = Harness(create=[Reply(code, body)])
    h.run()
    assert h.journey.refusal is not None and f"({code})" in h.journey.refusal
    assert h.journey.refusal.endswith(": Invalid API Key second line")  # one line


def test_an_ordinary_refusal_does_not_stop_the_run():
    h = Harness(create=[Reply(429, b"")])
    h.run()
    assert h.journey.refusal is None


@pytest.mark.parametrize(("header", "wait"), [("3", 3.0), ("0.5", 0.5), (None, INTERVAL),
                                               ("120", 120.0)])  # fmt: skip
def test_create_429_waits_retry_after(header, wait):
    h = Harness(create=[Reply(429, b"", header)])
    result = h.run()
    assert result.outcome is Outcome.CREATE_REJECTED and result.http_status == 429
    assert h.journey.pause_s == wait and h.clock.sleeps == []


def test_create_error_on_no_answer():
    h = Harness(create=[Reply(0)])
    result = h.run()
    assert result.outcome is Outcome.CREATE_ERROR
    assert result.samples == {} and result.http_status is None
    assert h.events == [] and h.journey.create_call is None
    assert len(h.transport.calls) == 1
    assert h.journey.pause_s == INTERVAL  # no hot loop against an unreachable target
    assert h.journey.fate == UNKNOWN  # the create may have reached the provider


def test_an_accepted_create_says_so_and_an_unreadable_one_may_have_made_a_session():
    h = Harness(status=[ready()])
    h.run()
    assert h.journey.fate == ACCEPTED
    h = Harness(create=[Reply(200, b"{")])
    assert h.run().outcome is Outcome.PROTOCOL_ERROR
    assert h.journey.fate == UNKNOWN


# --- the status decides ---------------------------------------------------------------


def test_the_phase_saying_ready_is_not_ready_until_the_status_is():
    # Issue 10 (8): `ready` was taken from progress.current_phase.
    h = Harness(status=[processing("configuring"), processing("ready"), processing("ready"),
                        ready()])  # fmt: skip
    result = h.run()
    assert result.outcome is Outcome.READY
    polls = h.transport.of("status")
    # ready_at lies between the last `processing` answer and the first `ready` one
    ready_at = result.estimates["ready_at"]
    assert (polls[2].sent + polls[2].received) / 2 < ready_at.value
    assert ready_at.value < (polls[3].sent + polls[3].received) / 2
    assert result.samples["unknown"]  # the phase-ready stretch is in no named phase


def test_ready_before_the_session_keeps_polling_until_the_session_is_there():
    # Issue 10 (10): a protocol error at once, though the spec says the session is
    # absent until its row exists.
    h = Harness(status=[pending(), status("ready", "ready"), status("ready", "ready"), ready()])
    result = h.run()
    assert result.outcome is Outcome.READY
    polls = h.transport.of("status")
    assert result.samples["ready_seen"] == [(polls[3].received - T0) * US]
    # the true ready instant: the status's, between poll 1 and poll 2
    assert polls[0].received < result.estimates["ready_at"].value < polls[1].received
    assert h.transport.of("release")[0].arg == "sess-1"


def test_a_session_that_never_appears_is_a_protocol_error_at_the_deadline():
    h = Harness(status=[status("ready", "ready")] * 4, ready_timeout=1.0)
    result = h.run()
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert h.clock.t == T0 + 1.0 and h.transport.of("release") == []


# --- terminal states before ready -----------------------------------------------------


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("failed", Outcome.FAILED),
        ("cancelled", Outcome.CANCELLED),
        ("completed", Outcome.COMPLETED_BEFORE_READY),
    ],
)
def test_terminal_states_before_ready(state, outcome):
    h = Harness(status=[pending(), processing(), status(state)])
    result = h.run()
    assert result.outcome is outcome
    assert set(result.samples) == {"create", "poll", "poll_lag"}
    assert len(result.samples["poll"]) == 3
    assert h.transport.of("release") == []
    assert h.events == [("request", "req-1")]
    assert h.journey.session_id is None


# --- abort ----------------------------------------------------------------------------


def test_abort_mid_polling_reports_what_was_measured():
    # Sleeps: before poll 1, before poll 2, before poll 3 -> killed there.
    h = Harness(status=[pending(), processing()], stop_at_sleep=3)
    with pytest.raises(StopJourney):
        h.journey.run()
    result = h.journey.abort()
    assert result.outcome is Outcome.ABORTED
    assert result.samples == {
        "create": [LAT * US], "poll": [LAT * US] * 2, "poll_lag": [0.0, 0.0]
    }
    assert h.journey.request_id == "req-1"
    assert h.events == [("request", "req-1")]


def test_abort_during_hold_keeps_the_session_id_for_clean_up():
    # Sleeps: before the only poll, then the hold -> killed there.
    h = Harness(status=[ready()], hold=10.0, stop_at_sleep=2)
    with pytest.raises(StopJourney):
        h.journey.run()
    result = h.journey.abort()
    assert result.outcome is Outcome.ABORTED
    assert h.journey.session_id == "sess-1" and not h.journey.released
    assert h.events == [("request", "req-1"), ("session", "sess-1")]
    assert "ready" not in result.samples and "release" not in result.samples
    assert result.samples["poll"] == [LAT * US]


def test_abort_before_create_answered():
    h = Harness()
    result = h.journey.abort()
    assert result.outcome is Outcome.ABORTED and result.samples == {}


# --- create body and Retry-After parsing ----------------------------------------------


def test_create_body_adds_the_run_tag_once_and_keeps_user_tags():
    config = {"session": {"tags": ["team-a", "run-1", "team-b"], "proxy": {"active": True}}}
    body = orjson.loads(create_body(config, "run-1"))
    assert body == {"session": {"tags": ["team-a", "team-b", "run-1"], "proxy": {"active": True}}}
    assert config["session"]["tags"] == ["team-a", "run-1", "team-b"]  # input untouched


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"session": {"tags": ["t"]}}),
        ({"session": None}, {"session": {"tags": ["t"]}}),
        ({"browser": {"x": 1}}, {"browser": {"x": 1}, "session": {"tags": ["t"]}}),
        ({"session": {"tags": []}}, {"session": {"tags": ["t"]}}),
        ({"session": {"tags": ["t", "t"]}}, {"session": {"tags": ["t"]}}),
    ],
)
def test_create_body_shapes(config, expected):
    assert orjson.loads(create_body(config, "t")) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("1", 1.0),
        ("2.75", 2.75),
        ("30", 30.0),
        ("30.5", 30.5),  # no cap: the caller's deadline bounds the wait
        ("86400", 86400.0),
        ("inf", None),
        ("-0.5", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        ("Fri, 31 Dec 1999 23:59:59 GMT", 0.0),  # in the past
        ("Thu, 01 Jan 2026 00:00:10 GMT", 10.0),  # IMF-fixdate
        ("Thursday, 01-Jan-26 00:00:10 GMT", 10.0),  # RFC 850
        ("Thu Jan  1 00:00:10 2026", 10.0),  # asctime
    ],
)
def test_parse_retry_after(value, expected):
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert parse_retry_after(value, now_wall=lambda: now) == expected


# --- the generator watching itself: poll lag ------------------------------------------------


class LateClock(Clock):
    """A clock whose sleeps overshoot by `late` seconds, as a starved event loop's do."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + self.late)


def test_a_poll_sent_late_records_its_lateness():
    # Issue 11 (2): nothing recorded how late a poll was sent against its schedule.
    h = Harness(status=[pending(), processing(), ready()])
    late = 0.0078125  # exact in binary
    h.clock = LateClock(late)
    h.transport.clock = h.clock
    h.journey.clock, h.journey.sleep = h.clock, h.clock.sleep
    result = h.run()
    assert result.samples["poll_lag"] == [late * US] * 3


# --- is ready usable? the connect check ------------------------------------------------


@dataclass(frozen=True)
class FakeCdp:
    ok: bool
    stage: str = ""
    error: str | None = None
    first_command: float | None = None
    connect_s: float | None = None
    first_command_s: float | None = None
    navigate_s: float | None = None


def with_check(result: FakeCdp, **kwargs: Any) -> Harness:
    h = Harness(status=[ready()], **kwargs)
    h.seen: list[str] = []

    def check(url: str) -> FakeCdp:
        h.seen.append(url)
        return result

    h.journey.connect_check = check
    return h


def test_a_usable_session_records_connect_first_command_and_navigate():
    h = with_check(FakeCdp(True, connect_s=0.125, first_command_s=0.03125, navigate_s=0.25,
                           first_command=1.0))  # fmt: skip
    result = h.run()
    assert result.outcome is Outcome.READY and h.seen == ["wss://x"]
    assert result.samples["connect"] == [0.125 * US]
    assert result.samples["first_command"] == [0.03125 * US]
    assert result.samples["navigate"] == [0.25 * US]
    assert result.cdp_error is None and h.journey.released


@pytest.mark.parametrize(
    ("cdp", "outcome", "cause"),
    [
        (FakeCdp(False, "connect", "refused"), Outcome.CONNECT_ERROR, "connect: refused"),
        (FakeCdp(False, "Browser.getVersion", "closed", connect_s=0.1),
         Outcome.CONNECT_ERROR, "Browser.getVersion: closed"),
        (FakeCdp(False, "Page.navigate", "navigate_failed", first_command=1.0, connect_s=0.1,
                 first_command_s=0.02), Outcome.NAVIGATE_ERROR, "Page.navigate: navigate_failed"),
    ],
)  # fmt: skip
def test_an_unusable_session_is_its_own_outcome_and_is_still_ended(cdp, outcome, cause):
    h = with_check(cdp)
    result = h.run()
    assert result.outcome is outcome and result.cdp_error == cause
    # It reached ready: its phases and ready time describe provisioning all the same.
    assert "ready" in result.samples and "queued" in result.samples
    assert h.journey.released  # the session it made is ended whatever the check said


def test_a_ready_session_without_a_cdp_url_cannot_be_connected_to():
    h = Harness(status=[status("ready", "ready", session={"session_id": "s"})])
    h.journey.connect_check = lambda url: pytest.fail("no URL to connect to")
    result = h.run()
    assert result.outcome is Outcome.CONNECT_ERROR and result.cdp_error == "connect: no_cdp_url"
