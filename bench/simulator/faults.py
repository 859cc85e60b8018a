"""Fault decisions per request (429, 5xx, malformed, dropped, slow) and status anomalies."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.simulator.profile import FAULT_ENDPOINTS, EndpointFaults

# Kinds reported to SessionModel.count_fault and shown by /_sim/counters.
RATE_LIMITED, SERVER_ERROR, MALFORMED, DROPPED, SLOW = "429", "5xx", "malformed", "drop", "slow"
# Status anomalies: counted once per request they touched (not per answer), so that a
# client which stops polling at the first odd answer sees exactly the counted number.
UNKNOWN_STATUS, BACKWARDS, COMPLETED = "unknown_status", "backwards", "completed"
UNKNOWN_STATUS_VALUE = "initializing"
_SERVER_ERRORS = (
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
)
_FIELDS = {f.name for f in dataclasses.fields(EndpointFaults)}
_RATES = ("rate_429", "rate_5xx", "rate_malformed", "rate_drop")
STATUS_RATES = ("rate_unknown_status", "rate_backwards", "rate_completed")
_STATUS_KINDS = dict(zip(STATUS_RATES, (UNKNOWN_STATUS, BACKWARDS, COMPLETED), strict=True))
# Phase order as a client walks it; `ready` (the status) ranks above every phase.
_RANK = {"queued": 0, "provisioning": 1, "configuring": 2, "ready": 3}
_LIVE = frozenset({"pending", "processing"})


class FaultConfigError(ValueError):
    """A fault table sent to PUT /_sim/faults is invalid (the message names the key)."""


@dataclass(frozen=True)
class Fault:
    """What to do to one request: `kind` one of the constants above, or None for nothing.

    429, 5xx and drop replace the answer before the model sees the request (no side
    effects); malformed truncates the real answer after the model handled it (so a
    create did happen, as when a body is cut in transit), and only when that answer
    is a 2xx with a body; slow delays the answer (whatever it is) and can come with any
    other kind.  `retry_after_s` (scaled) is the 429's Retry-After, and a 5xx's when a
    dialect answers those 503 + Retry-After.
    """

    kind: str | None
    delay_s: float = 0.0
    status: int = 0
    message: str = ""
    retry_after_s: float = 0.0


NO_FAULT = Fault(kind=None)


class FaultInjector:
    """Draws faults from a seeded rng; the table can be replaced at runtime."""

    def __init__(
        self, faults: Mapping[str, EndpointFaults], *, rng: random.Random, time_scale: float
    ) -> None:
        self._rng = rng
        self._time_scale = time_scale
        self.status_faults = StatusFaults(rng)
        self.replace(faults)

    def replace(self, faults: Mapping[str, EndpointFaults]) -> None:
        # Endpoints without any fault are left out, so the hot path does no draws for them.
        rates = (*_RATES, "rate_slow", *STATUS_RATES)
        self._table = {
            name: f for name, f in faults.items() if any(getattr(f, r) for r in rates)
        }
        self.status_faults.replace(self._table.get("status"))

    def table(self) -> dict[str, dict[str, float]]:
        return {name: dataclasses.asdict(f) for name, f in self._table.items()}

    def decide(self, endpoint: str) -> Fault:
        spec = self._table.get(endpoint)
        if spec is None:
            return NO_FAULT
        # One draw picks among the exclusive faults, with their rates as absolute
        # probabilities; a second, independent draw decides slowness.
        u = self._rng.random()
        delay = spec.slow_s * self._time_scale if self._rng.random() < spec.rate_slow else 0.0
        edge = spec.rate_429
        if u < edge:
            return Fault(
                RATE_LIMITED,
                delay,
                429,
                "Too many requests",
                spec.retry_after_s * self._time_scale,
            )
        edge += spec.rate_5xx
        if u < edge:
            status, message = self._rng.choice(_SERVER_ERRORS)
            return Fault(
                SERVER_ERROR, delay, status, message, spec.retry_after_s * self._time_scale
            )
        edge += spec.rate_malformed
        if u < edge:
            return Fault(MALFORMED, delay)
        edge += spec.rate_drop
        if u < edge:
            return Fault(DROPPED, delay)
        return Fault(SLOW, delay) if delay else NO_FAULT


def parse_fault_table(body: Any) -> dict[str, EndpointFaults]:
    """Validate PUT /_sim/faults's `{endpoint: {field: value}}`; it replaces the whole table."""
    if not isinstance(body, dict):
        raise FaultConfigError("body must be a JSON object {endpoint: {field: value}}")
    table: dict[str, EndpointFaults] = {}
    for endpoint, fields in body.items():
        if endpoint not in FAULT_ENDPOINTS:
            raise FaultConfigError(
                f"{endpoint}: unknown endpoint (expected one of {', '.join(FAULT_ENDPOINTS)})"
            )
        if not isinstance(fields, dict):
            raise FaultConfigError(f"{endpoint}: expected an object of fault fields")
        values: dict[str, float] = {}
        for key, value in fields.items():
            where = f"{endpoint}.{key}"
            if key not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise FaultConfigError(f"{where}: unknown field (expected one of {known})")
            if key in STATUS_RATES and endpoint != "status" and value:
                raise FaultConfigError(f"{where}: a status anomaly applies to 'status' only")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultConfigError(f"{where}: expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise FaultConfigError(f"{where}: must be a finite number >= 0, got {value!r}")
            if key.startswith("rate_") and value > 1:
                raise FaultConfigError(f"{where}: a rate must be between 0 and 1, got {value!r}")
            values[key] = float(value)
        faults = EndpointFaults(**values)
        for group in (_RATES, STATUS_RATES):
            if sum(getattr(faults, r) for r in group) > 1:
                raise FaultConfigError(f"{endpoint}: {' + '.join(group)} must be <= 1")
        table[endpoint] = faults
    return table


@dataclass(slots=True)
class _Tracked:
    """One request's status anomaly (None: spared) and what has been answered so far."""

    kind: str | None
    highest: int = 0  # rank of the furthest phase answered (the create answer is `queued`)
    fired: bool = False  # the anomaly has shown (and been counted)


class StatusFaults:
    """Per-request status anomalies on the status endpoint: unknown value, backwards, completed.

    Unlike the per-answer faults above, each is drawn once per request (at its first poll
    while switched on) and keeps to that request, because what it imitates is a request
    whose story is odd, not a flaky wire:

    * unknown_status: every answer while the request is in flight carries a status outside
      the spec (UNKNOWN_STATUS_VALUE); once it is terminal the truth shows again, so a
      client's clean-up can still find the session.
    * backwards: once an answer has shown provisioning or configuring, the next answer
      shows the phase before it (status `pending` for queued), once; the session is not shown.
    * completed: at the first poll while in flight the model really ends the request as
      `completed` (no session, slot freed): `completed` without ever `ready`.

    Replacing the table forgets every draw.  Memory: one small record per request polled
    while a status anomaly is switched on.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._rates: tuple[float, ...] = (0.0, 0.0, 0.0)
        self._requests: dict[str, _Tracked] = {}

    def replace(self, spec: EndpointFaults | None) -> None:
        self._rates = tuple(getattr(spec, r) for r in STATUS_RATES) if spec else (0.0, 0.0, 0.0)
        self._requests = {}

    @property
    def active(self) -> bool:
        return any(self._rates)

    def track(self, request_id: str) -> _Tracked:
        tracked = self._requests.get(request_id)
        if tracked is None:
            kind = None
            u = self._rng.random()
            for rate_name, rate in zip(STATUS_RATES, self._rates, strict=True):
                if u < rate:
                    kind = _STATUS_KINDS[rate_name]
                    break
                u -= rate
            tracked = self._requests[request_id] = _Tracked(kind)
        return tracked

    @staticmethod
    def wants_completion(tracked: _Tracked, status: str) -> bool:
        """Whether the model should end this request as completed now (the caller counts it)."""
        return tracked.kind == COMPLETED and not tracked.fired and status in _LIVE

    def rewrite(self, tracked: _Tracked, body: dict[str, Any]) -> str | None:
        """Apply the request's anomaly to a status body in place; the kind to count, if new."""
        data = body["data"]
        status = data["status"]
        phase = data.get("progress", {}).get("current_phase", "")
        counted = None
        if tracked.kind == UNKNOWN_STATUS and status in _LIVE:
            data["status"] = UNKNOWN_STATUS_VALUE
            if not tracked.fired:
                tracked.fired, counted = True, UNKNOWN_STATUS
            return counted
        if tracked.kind == COMPLETED and status == "completed" and not tracked.fired:
            tracked.fired = True
            return COMPLETED
        rank = _RANK["ready"] if status == "ready" else _RANK.get(phase, 0)
        if tracked.kind == BACKWARDS and not tracked.fired and tracked.highest in (1, 2):
            back = tracked.highest - 1
            back_phase = next(p for p, r in _RANK.items() if r == back)
            data["status"] = "pending" if back == 0 else "processing"
            data["progress"] = {"current_phase": back_phase}
            data.pop("session", None)
            tracked.fired = True
            return BACKWARDS
        tracked.highest = max(tracked.highest, rank)
        return None


def format_retry_after(seconds: float, time_scale: float) -> str:
    """Integer seconds at real time; decimal seconds when time is scaled (see deviations.py)."""
    if time_scale == 1:
        return str(max(0, math.ceil(seconds)))
    return f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") or "0"


__all__ = [
    "BACKWARDS",
    "COMPLETED",
    "DROPPED",
    "MALFORMED",
    "NO_FAULT",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "SLOW",
    "STATUS_RATES",
    "UNKNOWN_STATUS",
    "UNKNOWN_STATUS_VALUE",
    "Fault",
    "FaultConfigError",
    "FaultInjector",
    "StatusFaults",
    "format_retry_after",
    "parse_fault_table",
]
