"""Counts of the intervals that hold each journey's true values: compact, mergeable by addition.

Per journey, bench.core.censoring gives for `ready` and each phase an interval
[lower, upper] (microseconds) that certainly holds the true value.  Kept one per
journey, a long run would keep them all; binned on a fixed grid, identical pairs
share a count, workers' deltas merge by adding counts, and the number of distinct
pairs stays bounded by the grid (about (range / bin) x (width / bin)) rather than
growing with the journeys.

The grid is HDR-like: 1 us bins up to 2^BITS us, then 2^BITS bins per power of
two (a bin is at most 2^-BITS = 0.4 % of its value: 4 ms at 2 s, 0.25 ms at 250 ms).
A lower bound is rounded down to its bin's lower edge and an upper bound up to its
bin's upper edge, so the binned interval still holds the truth.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# 2^BITS bins per power of two above 2^BITS us: 0.4 % resolution.
BITS = 8
# The recorder's histogram range (1 h): beyond it nothing is recorded.
HIGHEST_US = 3_600_000_000

# (lower edge, upper edge) in integer microseconds -> journeys
Pairs = Counter[tuple[int, int]]


def _bin_width(value: int) -> int:
    if value < 1 << BITS:
        return 1
    return 1 << (value.bit_length() - 1 - BITS)


def floor_edge(value_us: float) -> int:
    """The grid's largest edge at or below `value_us` (>= 0)."""
    value = max(0, math.floor(value_us))
    width = _bin_width(value)
    return value - value % width


def ceil_edge(value_us: float) -> int:
    """The grid's smallest edge at or above `value_us` (>= 0)."""
    value = max(0, math.ceil(value_us))
    width = _bin_width(value)
    return value if value % width == 0 else value - value % width + width


def bin_interval(lower_us: float, upper_us: float) -> tuple[int, int] | None:
    """The grid's interval holding [lower_us, upper_us]; None past the recorder's range."""
    if upper_us > HIGHEST_US or not lower_us <= upper_us:
        return None
    return floor_edge(lower_us), ceil_edge(upper_us)


def to_wire(pairs: Mapping[str, Pairs]) -> dict[str, list[list[int]]]:
    """{metric: [[lower, upper, count], ...]}, sorted, for JSON and messages."""
    return {
        metric: [[lo, hi, n] for (lo, hi), n in sorted(counts.items())]
        for metric, counts in sorted(pairs.items())
        if counts
    }


def merge_wire(into: dict[str, Pairs], wire: Mapping[str, Iterable[Any]]) -> None:
    """Add a wire form's counts into `into` (what the master does with workers' deltas)."""
    for metric, rows in wire.items():
        counts = into.setdefault(metric, Counter())
        for lo, hi, n in rows:
            counts[(int(lo), int(hi))] += int(n)


def check_wire(value: Any, where: str) -> str | None:
    """What is wrong with a wire form (a results file's `censored`), or None if nothing."""
    if not isinstance(value, dict):
        return f"{where}: expected an object"
    for metric, rows in value.items():
        if not isinstance(rows, list):
            return f"{where}.{metric}: expected a list"
        for i, row in enumerate(rows):
            if (
                not isinstance(row, list)
                or len(row) != 3
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in row)
            ):
                return f"{where}.{metric}[{i}]: expected [lower, upper, count] integers"
            lo, hi, n = row
            if not 0 <= lo <= hi <= HIGHEST_US or n < 1:
                return f"{where}.{metric}[{i}]: expected 0 <= lower <= upper <= 1 h, count >= 1"
    return None


__all__ = [
    "BITS",
    "Pairs",
    "bin_interval",
    "ceil_edge",
    "check_wire",
    "floor_edge",
    "merge_wire",
    "to_wire",
]
