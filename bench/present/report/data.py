"""Results -> plain report data (pure): per-step statistics, rates, timeline, Little's law."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.analyse.capacity import (
    DEFAULT_KNEE_FACTOR,
    SLO,
    Capacity,
    capacity_at_slo,
    failure_counts,
    failure_rate,
)
from bench.analyse.capacity import knee as ready_knee
from bench.analyse.intervals import TURNBULL, IntervalEstimate
from bench.analyse.intervals import estimate as interval_estimate
from bench.analyse.stats import Buckets, mean, quantile, quantile_interval
from bench.core.journey import METRICS
from bench.core.outcomes import OUTCOMES
from bench.record.results import Results, is_open_model

# Quantiles every metric gets; the tables show the first three, the ready plot all four.
QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)
TABLE_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
CONFIDENCE = 0.95
CALL_METRICS: tuple[str, ...] = ("create", "poll", "release")


@dataclass(frozen=True)
class MetricStats:
    """One histogram summarised (microseconds)."""

    count: int
    mean_us: float | None
    quantiles: Mapping[float, int | None]
    intervals: Mapping[float, tuple[int, int] | None]
    # HDR-style distribution: (cumulative fraction at the bucket's top, bucket value)
    cumulative: tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class StepData:
    index: int
    target: int  # users: the concurrency (closed model) or the in-flight cap (open)
    achieved: float
    started_s: float
    ended_s: float
    duration_s: float
    journeys: int  # measured
    warmup_journeys: int
    outcomes: Mapping[str, int]  # measured
    all_outcomes: Mapping[str, int]  # measured + warm-up (for rates over the whole step)
    unobserved: Mapping[str, int]
    rejections: Mapping[str, int]
    release_errors: int
    metrics: Mapping[str, MetricStats]  # measured part
    arrival_rate: float | None = None  # open model: sessions/s offered
    cdp_errors: Mapping[str, int] = field(default_factory=dict)  # "stage: kind" -> count
    generator: Mapping[str, Any] | None = (
        None  # {"poll_lag_p99_us", "loop_lag_p99_us", "saturated"}
    )

    @property
    def level(self) -> float:
        """Where the step sits on the x axis: its arrival rate (open) or concurrency."""
        return self.arrival_rate if self.arrival_rate is not None else self.target

    @property
    def dropped(self) -> int:
        return self.outcomes.get("dropped", 0)

    @property
    def dropped_share(self) -> float | None:
        """Arrivals turned away by --max-in-flight, of those offered (open model)."""
        offered = self.decided + self.dropped
        return self.dropped / offered if offered else None

    # ready and phases from the intervals that hold each journey's truth (results that
    # record them; see bench.analyse.intervals): how `metrics` got those entries
    estimates: Mapping[str, IntervalEstimate] = field(default_factory=dict)

    @property
    def ready(self) -> int:
        return self.outcomes.get("ready", 0)

    @property
    def failures(self) -> int:
        return failure_counts(self.outcomes)[0]

    @property
    def decided(self) -> int:
        return failure_counts(self.outcomes)[1]

    @property
    def failure_rate(self) -> float | None:
        return failure_rate(self.outcomes)

    @property
    def ready_per_s(self) -> float | None:
        """Sessions that became ready per second, of the journeys started in this step.

        Warm-up journeys count here: they are real load, and the whole step's
        duration is the denominator.
        """
        if self.duration_s <= 0:
            return None
        return self.all_outcomes.get("ready", 0) / self.duration_s

    @property
    def failed_per_s(self) -> float | None:
        if self.duration_s <= 0:
            return None
        return failure_counts(self.all_outcomes)[0] / self.duration_s

    @property
    def littles_law_concurrency(self) -> float | None:
        """Throughput x mean ready time: the in-flight count Little's law predicts.

        It covers create -> ready only; release calls, held sessions and failed
        journeys also keep a user busy, so achieved concurrency is normally a little
        higher.  Far lower means the steps' counts or durations do not add up.
        """
        rate = self.ready_per_s
        ready = self.metrics.get("ready")
        if rate is None or ready is None or ready.mean_us is None:
            return None
        return rate * ready.mean_us / 1e6


@dataclass(frozen=True)
class TimelinePoint:
    t_s: float
    target: int
    in_flight: float
    ready_per_s: float
    failed_per_s: float
    dropped_per_s: float = 0.0


@dataclass(frozen=True)
class Timeline:
    points: tuple[TimelinePoint, ...]
    # True when drawn from the results file's timeline samples, False when rebuilt
    # from step boundaries (per-step averages only).
    sampled: bool
    interval_s: float | None


@dataclass(frozen=True)
class RunData:
    """Everything a report shows about one results file."""

    run_id: str
    release: str
    target_label: str
    host: str | None
    started_at: str
    duration_s: float
    exit_reason: str | None
    poll_interval_s: float
    settle_s: float
    step_time_s: float
    steps: tuple[StepData, ...]
    totals: Mapping[str, Any]
    left_alive: int
    left_alive_ids: tuple[str, ...]
    capacity: Capacity
    knee: int | None
    knee_factor: float
    timeline: Timeline
    merged: Mapping[str, MetricStats]  # measured, over all steps
    source_version: int
    workers_lost: tuple[str, ...] = ()
    open_model: bool = False
    estimates: Mapping[str, IntervalEstimate] = field(default_factory=dict)  # merged

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(sorted({s.level for s in self.steps}))

    @property
    def level_name(self) -> str:
        """What the ladder varies, in titles: concurrency, or the open model's arrival rate."""
        return "arrival rate" if self.open_model else "concurrency"

    @property
    def level_axis(self) -> str:
        return (
            "arrival rate (sessions/s offered)"
            if self.open_model
            else "target concurrency (in-flight session requests)"
        )

    def level_text(self, level: float | None) -> str:
        """'4 concurrent requests' or '2 sessions/s'."""
        if level is None:
            return "-"
        if self.open_model:
            return f"{level:g} sessions/s"
        return f"{level:g} concurrent requests"


def metric_stats(histogram: HdrHistogram | None) -> MetricStats:
    """Quantiles, their distribution-free intervals and the cumulative curve of a histogram."""
    if histogram is None:
        return MetricStats(0, None, dict.fromkeys(QUANTILES), dict.fromkeys(QUANTILES), ())
    buckets = Buckets.of(histogram)
    cumulative: list[tuple[float, int]] = []
    seen = 0
    for value, count in zip(buckets.values, buckets.counts, strict=True):
        seen += count
        cumulative.append((seen / buckets.total, value))
    return MetricStats(
        count=buckets.total,
        mean_us=mean(buckets),
        quantiles={q: quantile(buckets, q) for q in QUANTILES},
        intervals={q: quantile_interval(buckets, q, CONFIDENCE) for q in QUANTILES},
        cumulative=tuple(cumulative),
    )


def interval_stats(counts: Any) -> tuple[MetricStats, IntervalEstimate] | None:
    """A metric's stats from its recorded intervals (one step's, or several added).

    The midpoint method keeps everything a histogram gives (the middles are
    per-journey estimates); Turnbull's estimate has quantiles, a mean and a curve
    but no order-statistic interval (it is not a sample), so those are left out.
    """
    from bench.record.recorder import new_histogram

    est = interval_estimate(counts, QUANTILES)
    if est is None:
        return None
    if est.method == TURNBULL:
        stats = MetricStats(
            count=est.count,
            mean_us=est.mean,
            quantiles={q: round(v) for q, v in est.quantiles.items()},
            intervals=dict.fromkeys(QUANTILES),
            cumulative=tuple((f, round(v)) for f, v in est.cumulative),
        )
        return stats, est
    hist = new_histogram()
    pairs = (
        counts.items()
        if isinstance(counts, Mapping)
        else (item for part in counts for item in part.items())
    )
    for (lo, hi), n in pairs:
        hist.record_value(max(1, round((lo + hi) / 2)), n)
    return metric_stats(hist), est


def _counts(part: Mapping[str, Any], metric: str) -> dict[tuple[int, int], int]:
    from bench.record.censored import read_wire

    return read_wire((part.get("censored") or {}).get(metric, ""))


def ordered_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """Known metrics in journey order, then any newer ones alphabetically."""
    known = [m for m in METRICS if m in names]
    return (*known, *sorted(set(names) - set(METRICS)))


def _plain_counts(counter: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in counter.items()}


def step_data(
    results: Results,
    step: Mapping[str, Any],
    merged: dict[str, HdrHistogram] | None = None,
    merged_intervals: dict[str, list[Mapping[tuple[int, int], int]]] | None = None,
) -> StepData:
    """One step's numbers; its measured histograms (and intervals) are also collected into
    `merged` (and `merged_intervals`) if given."""
    from bench.record.recorder import new_histogram

    measured, warmup = step["measured"], step["warmup"]
    outcomes = {name: int(measured["outcomes"].get(name, 0)) for name in OUTCOMES}
    both = {name: outcomes[name] + int(warmup["outcomes"].get(name, 0)) for name in OUTCOMES}
    metrics = {}
    censored = measured.get("censored") or {}
    for name in ordered_metrics([*measured["histograms"], *censored]):
        # Decode each blob once: the step's stats and the run's merged view share it.
        hist = results.histogram(step["index"], name)
        metrics[name] = metric_stats(hist)
        if merged is not None and hist is not None:
            merged.setdefault(name, new_histogram()).add(hist)
    estimates = {}
    for name in censored:
        counts = _counts(measured, name)
        found = interval_stats(counts)
        if found is not None:
            metrics[name], estimates[name] = found
        if merged_intervals is not None:
            merged_intervals.setdefault(name, []).append(counts)
    return StepData(
        index=int(step["index"]),
        target=int(step["target_concurrency"]),
        achieved=float(step["achieved_concurrency"]),
        started_s=float(step["started_s"]),
        ended_s=float(step["ended_s"]),
        duration_s=float(step["duration_s"]),
        journeys=int(measured["journeys"]),
        warmup_journeys=int(warmup["journeys"]),
        outcomes=outcomes,
        all_outcomes=both,
        unobserved=_plain_counts(measured["unobserved"]),
        rejections=_plain_counts(measured["rejections"]),
        release_errors=int(measured["release_errors"]),
        metrics=metrics,
        arrival_rate=_number(step.get("arrival_rate")),
        cdp_errors=_plain_counts(measured.get("cdp_errors") or {}),
        generator=step.get("generator") if isinstance(step.get("generator"), Mapping) else None,
        estimates=estimates,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def timeline_from_samples(section: Any) -> Timeline | None:
    """The results file's timeline section, or None when absent, empty or unusable.

    Read defensively: the section is optional (format version 2 adds it, a migrated
    version-1 file has an empty one) and a sample missing a field is skipped rather
    than failing the whole report.
    """
    if not isinstance(section, Mapping):
        return None
    samples = section.get("samples")
    if not isinstance(samples, list) or not samples:
        return None
    interval = _number(section.get("interval_s"))
    points: list[TimelinePoint] = []
    previous_t: float | None = None
    for sample in samples:
        if not isinstance(sample, Mapping):
            continue
        fields = [_number(sample.get(k)) for k in ("t_s", "target", "in_flight", "ready", "failed")]
        if any(f is None for f in fields):
            continue
        t, target, in_flight, ready, failed = (f for f in fields if f is not None)
        # Counts are per interval; the interval is the file's, or the gap to the
        # previous sample when the file does not say.
        width = (
            interval
            if interval and interval > 0
            else (t - previous_t if previous_t is not None and t > previous_t else None)
        )
        previous_t = t
        if width is None:
            continue
        dropped = _number(sample.get("dropped")) or 0.0
        points.append(
            TimelinePoint(t, int(target), in_flight, ready / width, failed / width, dropped / width)
        )
    if not points:
        return None
    return Timeline(tuple(points), sampled=True, interval_s=interval)


def timeline_from_steps(steps: Sequence[StepData]) -> Timeline:
    """A coarse timeline from step boundaries: each step's averages held over its span."""
    points: list[TimelinePoint] = []
    for step in steps:
        ready = step.ready_per_s or 0.0
        failed = step.failed_per_s or 0.0
        for t in (step.started_s, step.ended_s):
            points.append(TimelinePoint(t, step.target, step.achieved, ready, failed))
    return Timeline(tuple(points), sampled=False, interval_s=None)


def target_label(run: Mapping[str, Any]) -> str:
    """'simulator (profile fast)', 'simulator (profile default, time x0.1)' or the host.

    A time-scaled simulator's durations are not the calibrated ones: the label says so
    wherever a title or a table names the target.
    """
    target = run["target"]
    if target.get("kind") == "simulator":
        profile = target.get("simulator_profile")
        scale = target.get("time_scale")
        details = [f"profile {profile}"] if profile else []
        if isinstance(scale, int | float) and scale != 1:
            details.append(f"time x{scale:g}")
        return f"simulator ({', '.join(details)})" if details else "simulator"
    return str(target.get("host") or "remote target")


def run_data(
    results: Results, slo: SLO | None = None, knee_factor: float = DEFAULT_KNEE_FACTOR
) -> RunData:
    """Extract everything the report shows from one loaded results file."""
    run, config = results.run, results.config
    merged_hists: dict[str, HdrHistogram] = {}
    merged_intervals: dict[str, list[Mapping[tuple[int, int], int]]] = {}
    steps = tuple(
        step_data(results, step, merged_hists, merged_intervals) for step in results.steps
    )
    names = ordered_metrics([*merged_hists, *merged_intervals])
    merged = {name: metric_stats(merged_hists.get(name)) for name in names}
    estimates = {}
    for name, counts in merged_intervals.items():
        found = interval_stats(counts)
        if found is not None:
            merged[name], estimates[name] = found
    timeline = timeline_from_samples(results.document.get("timeline")) or timeline_from_steps(steps)
    cleanup = results.cleanup
    return RunData(
        run_id=str(run["id"]),
        release=str(run["release"]),
        target_label=target_label(run),
        host=run["target"].get("host"),
        started_at=str(run["started_at"]),
        duration_s=float(run["duration_s"]),
        exit_reason=run.get("exit_reason"),
        poll_interval_s=float(config["poll_interval_s"]),
        settle_s=float(config["settle_s"]),
        step_time_s=float(config["step_time_s"]),
        steps=steps,
        totals=results.totals,
        left_alive=int(cleanup.get("left_alive") or 0),
        left_alive_ids=tuple(str(i) for i in cleanup.get("left_alive_ids") or ()),
        workers_lost=tuple(str(w) for w in run.get("workers_lost") or ()),
        capacity=capacity_at_slo(results, slo),
        knee=ready_knee(results, knee_factor),
        knee_factor=knee_factor,
        timeline=timeline,
        merged=merged,
        source_version=results.source_version,
        open_model=is_open_model(config),
        estimates=estimates,
    )


def poll_resolution_s(data: RunData) -> float:
    """Half the typical gap between two observations: how well a phase boundary is known.

    The driver sends a poll one interval after the previous one was sent, or at
    once when the answer took longer (bench/measure/driver.py), so consecutive observation
    instants are max(interval, poll latency) apart; DESIGN.md's midpoint estimate
    of a boundary is uncertain by half that gap.
    """
    poll = data.merged.get("poll")
    latency = (poll.quantiles.get(0.5) or 0) / 1e6 if poll is not None else 0.0
    return max(data.poll_interval_s, latency) / 2.0


__all__ = [
    "CALL_METRICS",
    "QUANTILES",
    "TABLE_QUANTILES",
    "MetricStats",
    "RunData",
    "StepData",
    "Timeline",
    "TimelinePoint",
    "metric_stats",
    "poll_resolution_s",
    "run_data",
    "timeline_from_samples",
    "timeline_from_steps",
]
