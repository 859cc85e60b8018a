"""Drive one async-session journey over a transport: create, poll to a terminal state, release.

The driver owns the client-side protocol (jittered first poll, fixed-rate polling,
Retry-After, backoff on transient errors, deadlines) and hands the raw timings to
`bench.core.journey.summarise`.  Transport, clock, sleep and random source are injected,
so the logic is tested exactly without Locust or sockets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from bench.core.journey import KNOWN_STATUSES, Call, JourneyResult, Observation, summarise
from bench.core.outcomes import Outcome

CREATE_PATH = "/v1/sessions/async"
STATUS_NAME = "/v1/sessions/async/[request_id]/status"
RELEASE_NAME = "/v1/sessions/[session_id]"

# Longest wait the harness accepts from a Retry-After or a backoff, seconds.
MAX_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    """What a transport returns: status 0 means no HTTP answer (network error)."""

    status: int
    body: bytes = b""
    retry_after: str | None = None


class Transport(Protocol):
    def create(self, body: bytes) -> Reply: ...
    def status(self, request_id: str) -> Reply: ...
    def release(self, session_id: str) -> Reply: ...


@dataclass(frozen=True)
class JourneySettings:
    poll_interval: float
    ready_timeout: float
    hold: float
    max_poll_errors: int
    create_body: bytes


def create_body(session_config: Mapping[str, Any], run_tag: str) -> bytes:
    """The create request body: the user's configuration plus the run's tag on the session."""
    body = dict(session_config)
    session = dict(body.get("session") or {})
    tags = [t for t in session.get("tags", []) if t != run_tag]
    session["tags"] = [*tags, run_tag]
    body["session"] = session
    return orjson.dumps(body)


def parse_retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds; decimals tolerated)."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default  # an HTTP-date or garbage: fall back rather than trust it
    if seconds != seconds or seconds < 0:
        return default
    return min(seconds, MAX_WAIT)


class ProtocolViolation(Exception):
    """The target answered 2xx with a body the API does not allow."""


def _data(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolViolation("body is not JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ProtocolViolation("body has no 'data' object")
    return data


def parse_status(body: bytes) -> tuple[str, str | None, str | None]:
    """(status, phase, session_id) from a status answer; raises ProtocolViolation."""
    data = _data(body)
    status = data.get("status")
    if not isinstance(status, str) or status not in KNOWN_STATUSES:
        raise ProtocolViolation(f"unknown status {status!r}")
    progress = data.get("progress")
    phase = progress.get("current_phase") if isinstance(progress, dict) else None
    if phase is not None and not isinstance(phase, str):
        raise ProtocolViolation("progress.current_phase is not a string")
    session_id = None
    if status == "ready":
        session = data.get("session")
        session_id = session.get("session_id") if isinstance(session, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise ProtocolViolation("ready without session.session_id")
    return status, phase, session_id


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

    create_call: Call | None = None
    request_id: str | None = None
    session_id: str | None = None
    released: bool = False
    release_failed: bool = False
    observations: list[Observation] = field(default_factory=list)
    poll_calls: list[Call] = field(default_factory=list)
    release_call: Call | None = None

    def _timed(self, call: Callable[[], Reply]) -> tuple[Reply, Call]:
        sent = self.clock()
        reply = call()
        return reply, Call(sent, self.clock())

    def _finish(self, outcome: Outcome, http_status: int | None = None) -> JourneyResult:
        result = summarise(
            create=self.create_call,
            outcome=outcome,
            observations=self.observations,
            poll_calls=self.poll_calls,
            release=self.release_call,
            http_status=http_status,
        )
        result.release_failed = self.release_failed
        return result

    def abort(self) -> JourneyResult:
        return self._finish(Outcome.ABORTED)

    def run(self) -> JourneyResult:
        settings = self.settings
        reply, call = self._timed(lambda: self.transport.create(settings.create_body))
        if reply.status == 0:
            # Pause before this user's next journey: an unreachable target answers
            # at once, and a user retrying in a hot loop would only burn the CPU.
            self.sleep(settings.poll_interval)
            return self._finish(Outcome.CREATE_ERROR)
        self.create_call = call
        if not 200 <= reply.status < 300:
            # Be a good client: wait as asked on a 429, one poll interval otherwise,
            # so a target refusing creates is not hammered by a tight retry loop.
            self.sleep(parse_retry_after(reply.retry_after, settings.poll_interval))
            return self._finish(Outcome.CREATE_REJECTED, reply.status)
        try:
            request_id = _data(reply.body).get("request_id")
        except ProtocolViolation:
            return self._finish(Outcome.PROTOCOL_ERROR)
        if not isinstance(request_id, str) or not request_id:
            return self._finish(Outcome.PROTOCOL_ERROR)
        self.request_id = request_id
        self.on_request(request_id)

        outcome = self._poll(call)
        if outcome is not Outcome.READY:
            return self._finish(outcome)
        self._release()
        return self._finish(Outcome.READY)

    def _poll(self, create: Call) -> Outcome:
        settings = self.settings
        assert self.request_id is not None
        deadline = create.sent + settings.ready_timeout
        # Jitter the first poll over one interval so users do not poll in lockstep.
        next_send = create.received + self.rng.uniform(0.0, settings.poll_interval)
        errors = 0
        while True:
            now = self.clock()
            if next_send >= deadline:
                if now < deadline:
                    self.sleep(deadline - now)
                return Outcome.TIMEOUT
            if next_send > now:
                self.sleep(next_send - now)
            reply, call = self._timed(lambda: self.transport.status(self.request_id or ""))
            # Fixed-rate polling from each send keeps the observation gaps at one
            # interval, which is what bounds the phase-boundary uncertainty.
            next_send = max(call.sent + settings.poll_interval, call.received)
            if reply.status != 0:
                self.poll_calls.append(call)
            if reply.status == 200:
                errors = 0
                try:
                    status, phase, session_id = parse_status(reply.body)
                except ProtocolViolation:
                    return Outcome.PROTOCOL_ERROR
                self.observations.append(Observation(call, status, phase))
                if status == "ready":
                    self.session_id = session_id
                    if session_id:
                        self.on_session(session_id)
                    return Outcome.READY
                if status in ("failed", "cancelled", "completed"):
                    return {
                        "failed": Outcome.FAILED,
                        "cancelled": Outcome.CANCELLED,
                        "completed": Outcome.COMPLETED_BEFORE_READY,
                    }[status]
                continue
            if reply.status == 429:
                wait = parse_retry_after(reply.retry_after, settings.poll_interval)
                next_send = max(next_send, call.received + wait)
                continue
            errors += 1
            if errors > settings.max_poll_errors:
                return Outcome.POLL_ERROR
            # Exponential backoff with full jitter (AWS architecture blog), capped.
            backoff = min(MAX_WAIT, settings.poll_interval * (2**errors))
            next_send = max(next_send, call.received + self.rng.uniform(0.0, backoff))

    def _release(self) -> None:
        assert self.session_id is not None
        if self.settings.hold > 0:
            self.sleep(self.settings.hold)
        session_id = self.session_id
        reply, call = self._timed(lambda: self.transport.release(session_id))
        if reply.status != 0:
            self.release_call = call
        if 200 <= reply.status < 300:
            self.released = True
            self.on_released(session_id)
        else:
            self.release_failed = True
