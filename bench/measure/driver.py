"""Drive one async-session journey over a transport: create, poll to a terminal state, release.

The driver owns the client-side protocol (jittered first poll, fixed-rate polling,
Retry-After, backoff on transient errors, deadlines, bounded release retries) and
hands the raw timings to `bench.core.journey.summarise`.  Transport, clocks, sleep
and random source are injected, so the logic is tested exactly without Locust or
sockets.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.core.journey import Call, JourneyResult, Observation, summarise
from bench.core.outcomes import Outcome
from bench.core.polling import PollPlan
from bench.measure.api import (
    CREATE_PATH,
    FATAL_CREATE,
    RELEASE_NAME,
    STATUS_NAME,
    UNKNOWN_CREATE,
    ProtocolViolation,
    Reply,
    Transport,
    data_of,
    ended_by_delete,
    error_message,
    parse_status,
)
from bench.measure.retry import backoff, parse_retry_after, retryable

# Longest exponential backoff between failed polls, seconds.  A target's own
# Retry-After is honoured in full; the journey's deadline bounds every wait.
MAX_WAIT = 30.0
RELEASE_ATTEMPTS = 4  # tries of a DELETE before the session is left to the reaper
RELEASE_MAX_WAIT = 5.0  # a longer Retry-After on a DELETE is the reaper's to honour

# What the create's answer says about a session: made, not made, or nobody knows.
ACCEPTED = "accepted"
REFUSED = "refused"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class JourneySettings:
    poll_interval: float
    ready_timeout: float
    hold: float
    max_poll_errors: int
    create_body: bytes


# The connect check after ready (--cdp-check): cdp_url -> a bench.measure.cdp_client
# CdpResult.  Injected, so the driver stays free of sockets and is tested with fakes.
ConnectCheck = Callable[[str], Any]
_US = 1_000_000.0


def create_body(session_config: Mapping[str, Any], run_tag: str) -> bytes:
    """The create request body: the user's configuration plus the run's tag on the session."""
    body = dict(session_config)
    session = dict(body.get("session") or {})
    tags = [t for t in session.get("tags", []) if t != run_tag]
    session["tags"] = [*tags, run_tag]
    body["session"] = session
    return orjson.dumps(body)


def create_fate(status: int, request_id: str | None) -> str:
    """Whether a create made a session: 2xx with an id yes; a definite refusal no; else unknown."""
    if 200 <= status < 300:
        return ACCEPTED if request_id else UNKNOWN  # accepted, but the id is unreadable
    return UNKNOWN if status in UNKNOWN_CREATE else REFUSED


@dataclass
class Journey:
    """One journey's state; `run()` drives it, `abort()` summarises it if it is cut short."""

    transport: Transport
    settings: JourneySettings
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random
    # Called with ids as they appear, so that a journey killed mid-way can be cleaned up.
    on_request: Callable[[str], None] = lambda request_id: None
    on_session: Callable[[str], None] = lambda session_id: None
    on_released: Callable[[str], None] = lambda session_id: None
    wall: Callable[[], float] = time.time  # for a Retry-After given as an HTTP-date
    connect_check: ConnectCheck | None = None  # after ready, before the hold and release
    # Poll-schedule hook (bench.core.polling): where this journey's polls go; None keeps
    # the fixed interval (jittered first poll, then one interval from each send).
    plan: PollPlan | None = None

    create_call: Call | None = None
    request_id: str | None = None
    session_id: str | None = None
    released: bool = False
    release_failed: bool = False
    fate: str = UNKNOWN  # of the create: ACCEPTED, REFUSED or UNKNOWN
    refusal: str | None = None  # set when the provider refused in a way that ends the run
    pause_s: float = 0.0  # how long the user should wait before its next journey
    cdp_url: str | None = None
    cdp: Any = None  # the connect check's CdpResult
    observations: list[Observation] = field(default_factory=list)
    poll_calls: list[Call] = field(default_factory=list)
    poll_lags: list[float] = field(default_factory=list)  # send - schedule, per poll (s)
    release_call: Call | None = None

    def _timed(self, call: Callable[[], Reply]) -> tuple[Reply, Call]:
        sent = self.clock()
        reply = call()
        return reply, Call(sent, self.clock())

    def _finish(self, outcome: Outcome, http_status: int | None = None) -> JourneyResult:
        # A journey whose session was ready but not usable still reached ready: its
        # phases and ready time describe provisioning like any other ready journey's.
        reached_ready = outcome in (Outcome.CONNECT_ERROR, Outcome.NAVIGATE_ERROR)
        result = summarise(
            create=self.create_call,
            outcome=Outcome.READY if reached_ready else outcome,
            observations=self.observations,
            poll_calls=self.poll_calls,
            release=self.release_call,
            http_status=http_status,
        )
        result.outcome = outcome
        result.release_failed = self.release_failed
        if self.poll_lags:
            result.samples["poll_lag"] = [lag * _US for lag in self.poll_lags]
        cdp = self.cdp
        if cdp is not None:
            for metric in ("connect", "first_command", "navigate"):
                seconds = getattr(cdp, f"{metric}_s")
                if seconds is not None:
                    result.samples[metric] = [seconds * _US]
            if not cdp.ok:
                result.cdp_error = f"{cdp.stage}: {cdp.error}"
        return result

    def abort(self) -> JourneyResult:
        return self._finish(Outcome.ABORTED)

    def run(self) -> JourneyResult:
        settings = self.settings
        reply, call = self._timed(lambda: self.transport.create(settings.create_body))
        if reply.status == 0:
            # Pause before this user's next journey: an unreachable target answers
            # at once, and a user retrying in a hot loop would only burn the CPU.
            self.pause_s = settings.poll_interval
            return self._finish(Outcome.CREATE_ERROR)
        self.create_call = call
        if not 200 <= reply.status < 300:
            self.fate = create_fate(reply.status, None)
            if reply.status in FATAL_CREATE:
                message = error_message(reply.body)
                self.refusal = FATAL_CREATE[reply.status] + (f": {message}" if message else "")
            # Be a good client: wait as asked (429 / 503), one poll interval otherwise,
            # so a target refusing creates is not hammered by a tight retry loop.
            hinted = parse_retry_after(reply.retry_after, now_wall=self.wall)
            self.pause_s = hinted if hinted is not None else settings.poll_interval
            return self._finish(Outcome.CREATE_REJECTED, reply.status)
        try:
            request_id = data_of(reply.body).get("request_id")
        except ProtocolViolation:
            request_id = None
        if not isinstance(request_id, str) or not request_id:
            return self._finish(Outcome.PROTOCOL_ERROR)
        self.fate = ACCEPTED
        self.request_id = request_id
        self.on_request(request_id)

        outcome = self._poll(call)
        if outcome is not Outcome.READY:
            return self._finish(outcome)
        if self.connect_check is not None:
            outcome = self._check()
        self._release()
        return self._finish(outcome)

    def _check(self) -> Outcome:
        """Is `ready` usable?  Open the cdp_url, one command, maybe a navigation."""
        assert self.connect_check is not None
        if not self.cdp_url:
            self.cdp = _NoUrl()
            return Outcome.CONNECT_ERROR
        self.cdp = result = self.connect_check(self.cdp_url)
        if result.ok:
            return Outcome.READY
        navigating = result.first_command is not None
        return Outcome.NAVIGATE_ERROR if navigating else Outcome.CONNECT_ERROR

    def _poll(self, create: Call) -> Outcome:
        settings = self.settings
        request_id = self.request_id
        assert request_id is not None
        deadline = create.sent + settings.ready_timeout
        # Jitter the first poll over one interval so users do not poll in lockstep.
        next_send = (
            self.plan.first(create)  # poll-schedule hook
            if self.plan is not None
            else create.received + self.rng.uniform(0.0, settings.poll_interval)
        )
        errors = 0
        ready_without_session = False
        while True:
            now = self.clock()
            if next_send >= deadline:
                if now < deadline:
                    self.sleep(deadline - now)
                # Status ready but the session never appeared: the spec's "absent until
                # the row exists" waited out in full, then a broken promise.
                return Outcome.PROTOCOL_ERROR if ready_without_session else Outcome.TIMEOUT
            scheduled = next_send
            if next_send > now:
                self.sleep(next_send - now)
            # The hot path: timed inline (no closure per poll).
            sent = self.clock()
            reply = self.transport.status(request_id)
            call = Call(sent, self.clock())
            # How late the poll left against its schedule: a starved generator turns its
            # own lateness into the target's latency (coordinated omission) unless seen.
            self.poll_lags.append(max(0.0, call.sent - scheduled))
            # Fixed-rate polling from each send keeps the observation gaps at one
            # interval, which is what bounds the phase-boundary uncertainty.
            next_send = max(call.sent + settings.poll_interval, call.received)
            if reply.status != 0:
                self.poll_calls.append(call)
            if reply.status == 200:
                errors = 0
                try:
                    answer = parse_status(reply.body)
                except ProtocolViolation:
                    return Outcome.PROTOCOL_ERROR
                has_session = answer.session_id is not None
                self.observations.append(
                    Observation(call, answer.status, answer.phase, session=has_session)
                )
                if self.plan is not None:  # poll-schedule hook: the plan sees this answer
                    next_send = max(self.plan.next(create, self.observations), call.received)
                if answer.status == "ready":
                    if not has_session:
                        # The spec: `session` is absent until the session row exists.
                        # Keep polling (bounded by the deadline) until it is there.
                        ready_without_session = True
                        continue
                    self.session_id = answer.session_id
                    self.cdp_url = answer.cdp_url
                    self.on_session(answer.session_id or "")
                    return Outcome.READY
                if answer.status in ("failed", "cancelled", "completed"):
                    return {
                        "failed": Outcome.FAILED,
                        "cancelled": Outcome.CANCELLED,
                        "completed": Outcome.COMPLETED_BEFORE_READY,
                    }[answer.status]
                continue
            hinted = (
                parse_retry_after(reply.retry_after, now_wall=self.wall)
                if reply.status in (429, 503)
                else None
            )
            if reply.status == 429:
                # Asked to slow down, not failed: honour the wait, count no error.
                wait = hinted if hinted is not None else settings.poll_interval
                next_send = max(next_send, call.received + wait)
                continue
            errors += 1
            if errors > settings.max_poll_errors:
                return Outcome.POLL_ERROR
            # Exponential backoff with full jitter, capped; a 503's Retry-After, if
            # longer, is honoured.
            wait = backoff(errors, settings.poll_interval, MAX_WAIT, self.rng)
            if hinted is not None:
                wait = max(wait, hinted)
            next_send = max(next_send, call.received + wait)

    def _release(self) -> None:
        """End the session; a few tries on transient failures, then it is the reaper's."""
        assert self.session_id is not None
        settings = self.settings
        if settings.hold > 0:
            self.sleep(settings.hold)
        session_id = self.session_id
        attempt = 0
        while True:
            reply, call = self._timed(lambda: self.transport.release(session_id))
            attempt += 1
            if reply.status != 0:
                self.release_call = call
            if ended_by_delete(reply.status):
                # 2xx: ended now; 401 / 404 / 410: the provider no longer knows it as
                # live (already ended, e.g. by a try whose answer was lost).
                self.released = True
                self.on_released(session_id)
                return
            if not retryable(reply.status) or attempt >= RELEASE_ATTEMPTS:
                self.release_failed = True
                return
            hinted = parse_retry_after(reply.retry_after, now_wall=self.wall)
            if hinted is not None and hinted > RELEASE_MAX_WAIT:
                # The user's next journey should not wait that long: the reaper will try
                # again when asked, off the load path.
                self.release_failed = True
                return
            wait = backoff(attempt, settings.poll_interval, RELEASE_MAX_WAIT, self.rng)
            self.sleep(max(wait, hinted) if hinted is not None else wait)


@dataclass(frozen=True)
class _NoUrl:
    """A ready session without a cdp_url: nothing to connect to."""

    ok: bool = False
    stage: str = "connect"
    error: str = "no_cdp_url"
    first_command: float | None = None
    connect_s: float | None = None
    first_command_s: float | None = None
    navigate_s: float | None = None


__all__ = [
    "ACCEPTED",
    "CREATE_PATH",
    "MAX_WAIT",
    "REFUSED",
    "RELEASE_ATTEMPTS",
    "RELEASE_NAME",
    "STATUS_NAME",
    "UNKNOWN",
    "Journey",
    "JourneySettings",
    "ProtocolViolation",
    "Reply",
    "create_body",
    "create_fate",
    "parse_retry_after",
    "parse_status",
]
