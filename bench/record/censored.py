"""Counts of the intervals that hold each journey's true values: compact, mergeable by addition.

Per journey, bench.core.censoring gives for `ready` and each phase an interval
[lower, upper] (microseconds) that certainly holds the true value.  Kept one per
journey, a long run would keep them all; binned, identical pairs share a count,
workers' deltas merge by adding counts, and the number of distinct pairs stays
bounded by the grid rather than growing with the journeys.

Both ends go to a grid of step 2^k us, the largest power of two no more than
1/RELATIVE_TO_WIDTH of the interval's width and 1/RELATIVE_TO_VALUE of its upper
end (at least 1 us): an interval is already uncertain by its width, so a step of a
few percent of it costs the estimates nothing (a 0.25 s interval at 2 s: 4 ms; a
10 ms one: 0.25 ms), while the pairs an interval of a given size can fall on stay
about RELATIVE_TO_WIDTH per step of position.  The step is a function of the
interval alone, so equal intervals always share a key, whoever recorded them.  The
lower end is rounded down and the upper end up: the binned interval still holds
the truth.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from bench.core.text import short_repr

RELATIVE_TO_WIDTH = 32  # a step is at most 1/32 of the interval's width ...
RELATIVE_TO_VALUE = 4096  # ... and of its upper end (0.025 %)
# The recorder's histogram range (1 h): beyond it nothing is recorded.
HIGHEST_US = 3_600_000_000

# (lower edge, upper edge) in integer microseconds -> journeys
Pairs = Counter[tuple[int, int]]


def step_for(lower_us: float, upper_us: float) -> int:
    """The grid step (us, a power of two) for the interval [lower_us, upper_us]."""
    limit = max((upper_us - lower_us) / RELATIVE_TO_WIDTH, upper_us / RELATIVE_TO_VALUE, 1.0)
    return 1 << int(math.log2(limit))


def bin_interval(lower_us: float, upper_us: float) -> tuple[int, int] | None:
    """The grid's interval holding [lower_us, upper_us]; None past the recorder's range."""
    if not 0 <= upper_us <= HIGHEST_US or not lower_us <= upper_us:
        return None
    lower_us = max(0.0, lower_us)
    step = step_for(lower_us, upper_us)
    return math.floor(lower_us / step) * step, math.ceil(upper_us / step) * step


def to_wire(pairs: Mapping[str, Pairs]) -> dict[str, str]:
    """{metric: "lower:upper:count lower:upper:count ..."}, sorted, for JSON and messages.

    One string per metric rather than a list of triples: an indented results file
    spends some 90 bytes on each triple and under 20 on each "lower:upper:count".
    """
    return {
        metric: " ".join(f"{lo}:{hi}:{n}" for (lo, hi), n in sorted(counts.items()))
        for metric, counts in sorted(pairs.items())
        if counts
    }


def rows(text: str) -> Iterator[tuple[int, int, int]]:
    """(lower, upper, count) from one metric's wire string (raises ValueError if malformed)."""
    for item in text.split():
        lo, hi, n = item.split(":")
        yield int(lo), int(hi), int(n)


def merge_wire(into: dict[str, Pairs], wire: Mapping[str, str]) -> None:
    """Add a wire form's counts into `into` (what the master does with workers' deltas)."""
    for metric, text in wire.items():
        counts = into.setdefault(metric, Counter())
        for lo, hi, n in rows(text):
            counts[(lo, hi)] += n


def check_wire(value: Any, where: str) -> str | None:
    """What is wrong with a wire form (a results file's `censored`), or None if nothing."""
    if not isinstance(value, dict):
        return f"{where}: expected an object"
    for name, text in value.items():
        metric = name if name.isidentifier() and len(name) <= 40 else short_repr(name, 40)
        if not isinstance(text, str):
            return f"{where}.{metric}: expected a string of lower:upper:count"
        for i, item in enumerate(text.split()):
            parts = item.split(":")
            if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
                return f"{where}.{metric} item {i}: expected lower:upper:count integers"
            lo, hi, n = (int(p) for p in parts)
            if not lo <= hi <= HIGHEST_US or n < 1:
                return f"{where}.{metric} item {i}: expected lower <= upper <= 1 h, count >= 1"
    return None


def read_wire(text: str) -> dict[tuple[int, int], int]:
    """One metric's counts from its (checked) wire string."""
    counts: dict[tuple[int, int], int] = {}
    for lo, hi, n in rows(text):
        counts[(lo, hi)] = counts.get((lo, hi), 0) + n
    return counts


__all__ = [
    "RELATIVE_TO_VALUE",
    "RELATIVE_TO_WIDTH",
    "Pairs",
    "bin_interval",
    "check_wire",
    "merge_wire",
    "read_wire",
    "rows",
    "step_for",
    "to_wire",
]
