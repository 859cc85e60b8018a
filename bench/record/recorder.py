"""HDR histograms per (ladder step, metric) plus outcome counts; mergeable deltas for workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.core.journey import METRICS, JourneyResult
from bench.core.outcomes import Outcome
from bench.record import censored

# 1 us to 1 h at 3 significant digits: within 0.1 % anywhere in range.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode_histogram(encoded: str | bytes) -> HdrHistogram:
    """Decode HDR's compressed base64 form (what HdrHistogram's tools call a HIST blob)."""
    blob = encoded.encode("ascii") if isinstance(encoded, str) else encoded
    return HdrHistogram.decode(blob)


def encode_histogram(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


@dataclass
class Part:
    """One side (measured or warm-up) of a step: histograms and counts."""

    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    journeys: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)  # HTTP code -> count
    unobserved: Counter[str] = field(default_factory=Counter)  # phase -> count
    out_of_range: Counter[str] = field(default_factory=Counter)  # metric -> count
    cdp_errors: Counter[str] = field(default_factory=Counter)  # "stage: kind" -> count
    anomalies: int = 0
    release_errors: int = 0
    # metric -> binned (lower, upper) us pairs that hold each ready journey's true value
    # (bench.record.censored): what interval-censored estimates are made from
    censored: dict[str, censored.Pairs] = field(default_factory=dict)

    def record(self, metric: str, value_us: float) -> None:
        value = round(value_us)
        # hdrh rounds its range up to a power of two and would accept (or, past
        # that, silently drop) values beyond 1 h: keep the stated range honest.
        if value < 0 or value > HIGHEST_US:
            self.out_of_range[metric] += 1
            return
        hist = self.histograms.get(metric)
        if hist is None:
            hist = self.histograms[metric] = new_histogram()
        if not hist.record_value(value):
            self.out_of_range[metric] += 1

    def add_result(self, result: JourneyResult) -> None:
        self.outcomes[result.outcome.value] += 1
        if result.outcome is Outcome.CREATE_REJECTED and result.http_status is not None:
            self.rejections[str(result.http_status)] += 1
        for phase in result.unobserved:
            self.unobserved[phase] += 1
        self.anomalies += result.anomalies
        self.release_errors += int(result.release_failed)
        if result.cdp_error is not None:
            self.cdp_errors[result.cdp_error] += 1
        for metric, values in result.samples.items():
            for value in values:
                self.record(metric, value)
        for metric, (lower, upper) in result.intervals.items():
            pair = censored.bin_interval(lower, upper)
            if pair is not None:
                self.censored.setdefault(metric, Counter())[pair] += 1

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "histograms": {m: encode_histogram(h) for m, h in self.histograms.items()},
            "journeys": self.journeys,
            "outcomes": dict(self.outcomes),
            "rejections": dict(self.rejections),
            "unobserved": dict(self.unobserved),
            "out_of_range": dict(self.out_of_range),
            "cdp_errors": dict(self.cdp_errors),
            "anomalies": self.anomalies,
            "release_errors": self.release_errors,
        }
        # Only when there is some, so a part without ready journeys reads as before.
        if any(self.censored.values()):
            wire["censored"] = censored.to_wire(self.censored)
        return wire

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        for metric, encoded in wire.get("histograms", {}).items():
            hist = self.histograms.get(metric)
            if hist is None:
                self.histograms[metric] = decode_histogram(encoded)
            else:
                hist.add(decode_histogram(encoded))
        self.journeys += int(wire.get("journeys", 0))
        self.outcomes.update(wire.get("outcomes", {}))
        self.rejections.update(wire.get("rejections", {}))
        self.unobserved.update(wire.get("unobserved", {}))
        self.out_of_range.update(wire.get("out_of_range", {}))
        self.cdp_errors.update(wire.get("cdp_errors", {}))
        self.anomalies += int(wire.get("anomalies", 0))
        self.release_errors += int(wire.get("release_errors", 0))
        censored.merge_wire(self.censored, wire.get("censored", {}))

    def is_empty(self) -> bool:
        return not (self.journeys or self.histograms or self.outcomes)

    def count(self, metric: str) -> int:
        hist = self.histograms.get(metric)
        return 0 if hist is None else hist.get_total_count()


@dataclass
class Step:
    """Everything recorded for journeys that started in one ladder step."""

    measured: Part = field(default_factory=Part)
    warmup: Part = field(default_factory=Part)
    # Integral over time of in-flight journeys (journey-seconds): divided by the
    # step's duration it is the achieved mean concurrency, and it adds up across
    # workers exactly, where sampled counts would not.
    busy_seconds: float = 0.0

    def part(self, warmup: bool) -> Part:
        return self.warmup if warmup else self.measured


class Recorder:
    """Per-step histograms and counts.  Not thread-safe; one per process (gevent is fine)."""

    def __init__(self) -> None:
        self.steps: dict[int, Step] = {}

    def step(self, index: int) -> Step:
        step = self.steps.get(index)
        if step is None:
            step = self.steps[index] = Step()
        return step

    def journey_started(self, step: int, warmup: bool) -> None:
        self.step(step).part(warmup).journeys += 1

    def journey_finished(self, step: int, warmup: bool, result: JourneyResult) -> None:
        self.step(step).part(warmup).add_result(result)

    def add_busy(self, step: int, seconds: float) -> None:
        if seconds > 0:
            self.step(step).busy_seconds += seconds

    # --- shipping between processes -------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """A msgpack/JSON-friendly snapshot; with `take_delta` it is what workers ship."""
        return {
            str(index): {
                "measured": step.measured.to_wire(),
                "warmup": step.warmup.to_wire(),
                "busy_seconds": step.busy_seconds,
            }
            for index, step in sorted(self.steps.items())
        }

    def take_delta(self) -> dict[str, Any]:
        """Everything recorded since the last call, then forget it (worker side)."""
        wire = self.to_wire()
        self.steps = {}
        return wire

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        for index, data in wire.items():
            step = self.step(int(index))
            step.measured.merge_wire(data.get("measured", {}))
            step.warmup.merge_wire(data.get("warmup", {}))
            step.busy_seconds += float(data.get("busy_seconds", 0.0))

    # --- invariants -----------------------------------------------------------------

    def invariant_violations(self) -> list[str]:
        """Steps whose outcomes do not add up to the journeys started (should be none)."""
        problems = []
        for index, step in sorted(self.steps.items()):
            for label, part in (("measured", step.measured), ("warmup", step.warmup)):
                total = sum(part.outcomes.values())
                if total != part.journeys:
                    problems.append(
                        f"step {index} {label}: {part.journeys} journeys started, "
                        f"{total} outcomes recorded"
                    )
        return problems

    def totals(self) -> tuple[int, Counter[str]]:
        journeys = 0
        outcomes: Counter[str] = Counter()
        for step in self.steps.values():
            for part in (step.measured, step.warmup):
                journeys += part.journeys
                outcomes.update(part.outcomes)
        return journeys, outcomes

    def rejections(self) -> Counter[str]:
        """Create refusals by HTTP code, over every step (warm-up included)."""
        codes: Counter[str] = Counter()
        for step in self.steps.values():
            for part in (step.measured, step.warmup):
                codes.update(part.rejections)
        return codes


def merged_histogram(parts: Iterable[Part], metric: str) -> HdrHistogram:
    """One histogram of `metric` over several parts (e.g. all steps)."""
    total = new_histogram()
    for part in parts:
        hist = part.histograms.get(metric)
        if hist is not None:
            total.add(hist)
    return total


__all__ = ["METRICS", "Part", "Recorder", "Step", "decode_histogram", "encode_histogram"]
