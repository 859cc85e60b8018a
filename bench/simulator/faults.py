"""Fault decisions per request (429, 5xx, malformed body, dropped connection, slow answer)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.simulator.profile import ENDPOINTS, EndpointFaults

# Kinds reported to SessionModel.count_fault and shown by /_sim/counters.
RATE_LIMITED, SERVER_ERROR, MALFORMED, DROPPED, SLOW = "429", "5xx", "malformed", "drop", "slow"
_SERVER_ERRORS = (
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
)
_FIELDS = {f.name for f in dataclasses.fields(EndpointFaults)}
_RATES = ("rate_429", "rate_5xx", "rate_malformed", "rate_drop")


class FaultConfigError(ValueError):
    """A fault table sent to PUT /_sim/faults is invalid (the message names the key)."""


@dataclass(frozen=True)
class Fault:
    """What to do to one request: `kind` one of the constants above, or None for nothing.

    429, 5xx and drop replace the answer before the model sees the request (no side
    effects); malformed truncates the real answer after the model handled it (so a
    create did happen, as when a body is cut in transit), and only when that answer
    is a 200; slow delays the answer (whatever it is) and can come with any other kind.
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
        self.replace(faults)

    def replace(self, faults: Mapping[str, EndpointFaults]) -> None:
        # Endpoints without any fault are left out, so the hot path does no draws for them.
        rates = (*_RATES, "rate_slow")
        self._table = {
            name: f for name, f in faults.items() if any(getattr(f, r) for r in rates)
        }

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
            return Fault(SERVER_ERROR, delay, status, message)
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
        if endpoint not in ENDPOINTS:
            raise FaultConfigError(
                f"{endpoint}: unknown endpoint (expected one of {', '.join(ENDPOINTS)})"
            )
        if not isinstance(fields, dict):
            raise FaultConfigError(f"{endpoint}: expected an object of fault fields")
        values: dict[str, float] = {}
        for key, value in fields.items():
            where = f"{endpoint}.{key}"
            if key not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise FaultConfigError(f"{where}: unknown field (expected one of {known})")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultConfigError(f"{where}: expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise FaultConfigError(f"{where}: must be a finite number >= 0, got {value!r}")
            if key.startswith("rate_") and value > 1:
                raise FaultConfigError(f"{where}: a rate must be between 0 and 1, got {value!r}")
            values[key] = float(value)
        faults = EndpointFaults(**values)
        if sum(getattr(faults, r) for r in _RATES) > 1:
            raise FaultConfigError(f"{endpoint}: {' + '.join(_RATES)} must be <= 1")
        table[endpoint] = faults
    return table


def format_retry_after(seconds: float, time_scale: float) -> str:
    """Integer seconds at real time; decimal seconds when time is scaled (see deviations.py)."""
    if time_scale == 1:
        return str(max(0, math.ceil(seconds)))
    return f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") or "0"


__all__ = [
    "DROPPED",
    "MALFORMED",
    "NO_FAULT",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "SLOW",
    "Fault",
    "FaultConfigError",
    "FaultInjector",
    "format_retry_after",
    "parse_fault_table",
]
