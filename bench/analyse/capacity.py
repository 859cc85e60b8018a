"""Capacity at an SLO and the latency knee: pure verdicts over a results file's steps.

Definitions (used by the report, comparisons and run gates; change them only here):

* **Failure rate** of a step = failed journeys / decided journeys, over the step's
  *measured* part (warm-up journeys are kept apart, as everywhere).  A journey is
  *decided* when it has any outcome but ``aborted``: an aborted journey was cut
  short by the test stopping and says nothing about the target, so it counts on
  neither side.  *Failed* is every decided outcome that is not ``ready``:
  ``failed``, ``cancelled``, ``completed_before_ready``, ``timeout``,
  ``create_rejected``, ``create_error``, ``poll_error``, ``protocol_error``.
  A client asking for a session got none in all of those cases.
* **Ready quantile** = the nearest-rank quantile (bench.analyse.stats) of the step's
  measured ``ready`` histogram (POST sent -> estimated ready instant).  It holds
  ready journeys only; failures are judged by the failure rate.
* A **step passes** the SLO when it has decided journeys, at least one ready
  sample, its ready quantile <= the limit and its failure rate <= the limit.
  A step with no decided journeys is *not evaluated* (no verdict, no effect).
* **Capacity** = the highest target concurrency such that every evaluated step at
  that level *and every lower level* passes.  A level that passes again above a
  failing one (noise, or a target that recovered) is reported in the per-step
  detail and in ``Capacity.highest_passing`` but is not capacity: you could not
  have ramped to it without passing through the failure.
* **Knee** = the lowest target concurrency whose median ready time exceeds
  ``factor`` (default 1.5) times the median at the lowest concurrency measured.
  Deliberately simple: a ratio to the unloaded baseline is easy to check by
  hand, where a piecewise-linear fit on a handful of noisy points would claim
  more precision than a ladder of 4-12 steps has.  None when fewer than two
  levels have ready samples or latency never bends that much.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.analyse.stats import Buckets, quantile
from bench.core.outcomes import FAILURE_OUTCOMES, failure_counts, failure_rate
from bench.core.text import percent, quantile_name
from bench.record.results import Results, step_level

# Defaults for `bench report` (and anyone else without an opinion): p95 ready within
# 5 s and at most 1 % of requests failing.  The provider's measured ready times are
# p99 2.0 s at concurrency 1 and 2.6 s at 10 (shared/reference/measured/): 5 s leaves
# a healthy service room for load, while a queue for browser slots (the usual way
# capacity runs out) pushes p95 past it within a few steps, so the headline lands
# near the real limit instead of far beyond it.
DEFAULT_READY_QUANTILE = 0.95
DEFAULT_READY_LIMIT_S = 5.0
DEFAULT_FAILURE_RATE_LIMIT = 0.01
DEFAULT_KNEE_FACTOR = 1.5

@dataclass(frozen=True, kw_only=True)
class SLO:
    """Limits a step must meet: a ready-time quantile (seconds) and a failure rate (fraction).

    Keyword-only, so SLO(ready_limit_s=10, failure_rate_limit=0.05) reads unambiguously.
    """

    ready_limit_s: float = DEFAULT_READY_LIMIT_S
    failure_rate_limit: float = DEFAULT_FAILURE_RATE_LIMIT
    ready_quantile: float = DEFAULT_READY_QUANTILE

    def __post_init__(self) -> None:
        if not 0 < self.ready_quantile < 1:
            raise ValueError(f"ready_quantile must be in (0, 1), got {self.ready_quantile}")
        if not self.ready_limit_s > 0:
            raise ValueError(f"ready_limit_s must be > 0, got {self.ready_limit_s}")
        if not 0 <= self.failure_rate_limit <= 1:
            raise ValueError(
                f"failure_rate_limit must be in [0, 1], got {self.failure_rate_limit}"
            )

    def describe(self) -> str:
        """e.g. 'p95 ready <= 30 s and failure rate <= 1 %'."""
        return (
            f"{quantile_name(self.ready_quantile)} ready <= {self.ready_limit_s:g} s and "
            f"failure rate <= {percent(self.failure_rate_limit, 4)}"
        )


@dataclass(frozen=True)
class StepVerdict:
    """One step judged against the SLO."""

    index: int
    target: float  # the step's level: target concurrency, or arrival rate (open model)
    achieved: float
    decided: int
    failures: int
    ready_samples: int
    ready_quantile_s: float | None
    # None when the step has no decided journeys (not evaluated)
    failure_rate: float | None
    passes: bool | None
    reason: str


@dataclass(frozen=True)
class Capacity:
    """The SLO verdict for a run: capacity plus each step's detail."""

    slo: SLO
    # the capacity: the highest level (concurrency, or arrival rate in the open model)
    level: float | None
    steps: tuple[StepVerdict, ...]
    # the highest level where every evaluated step passes, contiguous or not
    highest_passing: float | None
    # the lowest level with a failing step (None if none fails)
    first_failure: float | None

    @property
    def concurrency(self) -> float | None:
        """The capacity's level under the closed model's name (concurrent journeys)."""
        return self.level


def judge_step(
    step: Mapping[str, Any], ready: Buckets | None, slo: SLO
) -> StepVerdict:
    """Judge one results-file step; `ready` holds its measured ready-time buckets (us)."""
    failures, decided = failure_counts(step["measured"]["outcomes"])
    dropped = int(step["measured"]["outcomes"].get("dropped", 0))
    offered = decided + dropped
    samples = ready.total if ready is not None else 0
    q_us = quantile(ready, slo.ready_quantile) if ready is not None and samples else None
    q_s = None if q_us is None else q_us / 1e6
    rate = failures / decided if decided else None
    label = quantile_name(slo.ready_quantile)
    passes: bool | None
    if not decided:
        passes, reason = None, "no decided journeys: not evaluated"
    else:
        problems = []
        if q_s is None:
            problems.append("no session became ready")
        elif q_s > slo.ready_limit_s:
            problems.append(f"{label} ready {q_s:.3g} s > {slo.ready_limit_s:g} s")
        assert rate is not None
        if rate > slo.failure_rate_limit:
            problems.append(
                f"failure rate {percent(rate, 4)} > {percent(slo.failure_rate_limit, 4)}"
            )
        # Open model: arrivals the harness's cap turned away were never offered to the
        # target; past the failure limit the step cannot vouch for this rate.
        if offered and dropped / offered > slo.failure_rate_limit:
            problems.append(
                f"{percent(dropped / offered, 4)} of arrivals dropped (--max-in-flight full)"
            )
        passes = not problems
        reason = "; ".join(problems) if problems else (
            f"{label} ready {q_s:.3g} s, failure rate {percent(rate, 4)}"
        )
    return StepVerdict(
        index=step["index"],
        target=step_level(step),
        achieved=float(step["achieved_concurrency"]),
        decided=decided,
        failures=failures,
        ready_samples=samples,
        ready_quantile_s=q_s,
        failure_rate=rate,
        passes=passes,
        reason=reason,
    )


def capacity_from_verdicts(verdicts: Sequence[StepVerdict], slo: SLO) -> Capacity:
    """Capacity from per-step verdicts (pure; see the module docstring)."""
    by_level: dict[float, list[bool]] = {}
    for v in verdicts:
        if v.passes is not None:
            by_level.setdefault(v.target, []).append(v.passes)
    level_ok = {level: all(oks) for level, oks in sorted(by_level.items())}
    capacity: float | None = None
    first_failure: float | None = None
    for level, ok in level_ok.items():  # ascending
        if not ok:
            first_failure = level
            break
        capacity = level
    passing = [level for level, ok in level_ok.items() if ok]
    return Capacity(
        slo=slo,
        level=capacity,
        steps=tuple(verdicts),
        highest_passing=max(passing) if passing else None,
        first_failure=first_failure,
    )


def _ready_buckets(results: Results, index: int) -> Buckets | None:
    hist = results.histogram(index, "ready")
    return None if hist is None else Buckets.of(hist)


def capacity_at_slo(results: Results, slo: SLO | None = None) -> Capacity:
    """The highest target concurrency of the run that meets `slo` (default SLO())."""
    slo = slo or SLO()
    verdicts = [
        judge_step(step, _ready_buckets(results, step["index"]), slo) for step in results.steps
    ]
    return capacity_from_verdicts(verdicts, slo)


def knee_from_medians(
    medians: Mapping[float, float], factor: float = DEFAULT_KNEE_FACTOR
) -> float | None:
    """The lowest level whose median exceeds `factor` x the lowest level's median."""
    if factor <= 1:
        raise ValueError(f"knee factor must be > 1, got {factor}")
    levels = sorted(medians)
    if len(levels) < 2:
        return None
    baseline = medians[levels[0]]
    for level in levels[1:]:
        if medians[level] > factor * baseline:
            return level
    return None


def ready_medians(results: Results) -> dict[float, float]:
    """Median ready time (us) per level (concurrency or arrival rate), steps of one merged."""
    from bench.record.recorder import new_histogram

    merged: dict[float, Any] = {}
    for step in results.steps:
        hist = results.histogram(step["index"], "ready")
        if hist is None or hist.get_total_count() == 0:
            continue
        level = step_level(step)
        if level not in merged:
            merged[level] = new_histogram()
        merged[level].add(hist)
    out: dict[float, float] = {}
    for level, hist in merged.items():
        value = quantile(hist, 0.5)
        if value is not None:
            out[level] = float(value)
    return out


def knee(results: Results, factor: float = DEFAULT_KNEE_FACTOR) -> float | None:
    """Where ready latency starts to bend: see the module docstring."""
    return knee_from_medians(ready_medians(results), factor)


__all__ = [
    "DEFAULT_FAILURE_RATE_LIMIT",
    "DEFAULT_KNEE_FACTOR",
    "DEFAULT_READY_LIMIT_S",
    "DEFAULT_READY_QUANTILE",
    "FAILURE_OUTCOMES",
    "SLO",
    "Capacity",
    "StepVerdict",
    "capacity_at_slo",
    "capacity_from_verdicts",
    "failure_counts",
    "failure_rate",
    "judge_step",
    "knee",
    "knee_from_medians",
    "ready_medians",
]
