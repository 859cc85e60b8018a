"""The open model's arrivals: when each session request is due, per worker (pure).

A step offers `rate` sessions per second whatever the earlier ones are doing (k6's
constant-arrival-rate).  With N workers the rate is split exactly: worker j of N
takes the arrivals j, j+N, j+2N, ... of the constant schedule (together, exactly the
schedule), or an independent Poisson process of rate/N (the superposition of N such
processes is a Poisson process of rate R).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

CONSTANT = "constant"
POISSON = "poisson"
KINDS = (CONSTANT, POISSON)


class ArrivalError(ValueError):
    """Bad arrival-rate text; the message is one line fit for the user."""


def parse_rates(text: str) -> tuple[float, ...]:
    """``"0.5,1,2,4"`` -> arrival rates in sessions per second, each > 0 and finite."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise ArrivalError(f"arrival rates {text!r}: expected comma-separated numbers, e.g. 1,2,4")
    rates = []
    for part in parts:
        try:
            rate = float(part)
        except ValueError:
            raise ArrivalError(f"arrival rates {text!r}: {part!r} is not a number") from None
        if not math.isfinite(rate) or rate <= 0:
            raise ArrivalError(f"arrival rates {text!r}: every rate must be > 0, got {part}")
        rates.append(rate)
    return tuple(rates)


@dataclass
class ArrivalSchedule:
    """This worker's arrival instants in one step, from the step's start (seconds)."""

    rate: float  # the whole run's rate for the step (all workers together)
    index: int  # this worker's place among `count`
    count: int
    kind: str
    start: float
    rng: random.Random
    _n: int = 0
    _last: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown arrival kind {self.kind!r}")
        if not (0 <= self.index < self.count):
            raise ValueError(f"worker {self.index} of {self.count}")

    def next(self) -> float:
        """The next arrival instant (on the same clock as `start`)."""
        if self.kind == CONSTANT:
            at = self.start + (self.index + self._n * self.count) / self.rate
        else:
            before = self.start if self._last is None else self._last
            at = before + self.rng.expovariate(self.rate / self.count)
        self._n += 1
        self._last = at
        return at


__all__ = ["CONSTANT", "KINDS", "POISSON", "ArrivalError", "ArrivalSchedule", "parse_rates"]
