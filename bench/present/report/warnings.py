"""Stability warnings (pure): what makes a number in the report doubtful, and how to fix it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from bench.analyse.stats import order_statistic_ranks
from bench.core.journey import TIMED_PHASES
from bench.core.text import quantile_name
from bench.present.report.data import CONFIDENCE, QUANTILES, RunData, poll_resolution_s

# Thresholds, chosen to flag what would mislead a reader and nothing else.
ACHIEVED_FRACTION = 0.8  # achieved concurrency below 80 % of the target
UNOBSERVED_FRACTION = 0.2  # a phase no poll saw in more than 20 % of ready journeys


@dataclass(frozen=True)
class ReportWarning:
    """One problem with the run and the fix for it."""

    code: str
    message: str
    fix: str


@cache
def samples_for_interval(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest samples for which the q-quantile has a two-sided distribution-free interval."""
    # Necessary condition from bench.analyse.stats: q^n <= alpha/2  =>  n >= log(alpha/2) / log(q).
    n = max(1, math.ceil(math.log((1 - confidence) / 2) / math.log(max(q, 1 - q))))
    while order_statistic_ranks(n, q, confidence) is None:
        n += 1
    return n


def _levels(values: list[str]) -> str:
    return ", ".join(values)


def _lags(generator: Mapping[str, Any]) -> str:
    """The step's lag p99s that were recorded, in ms: "poll-lag p99 3 ms, loop-lag p99 80 ms"."""
    named = (("poll_lag_p99_us", "poll-lag"), ("loop_lag_p99_us", "loop-lag"))
    return ", ".join(
        f"{label} p99 {generator[key] / 1e3:.3g} ms"
        for key, label in named
        if generator.get(key) is not None
    )


def warnings_for(data: RunData) -> list[ReportWarning]:
    """Every warning for one run, in a stable order."""
    out: list[ReportWarning] = []

    # 1. Too few samples: a percentile without a confidence interval is a guess.
    for q in QUANTILES:
        need = samples_for_interval(q)
        short = [
            f"{s.level:g} ({s.metrics['ready'].count if 'ready' in s.metrics else 0})"
            for s in data.steps
            if 0 < (s.metrics["ready"].count if "ready" in s.metrics else 0) < need
        ]
        if short:
            out.append(
                ReportWarning(
                    "few-samples",
                    f"{quantile_name(q)} ready time rests on too few samples for a 95 % confidence "
                    f"interval (needs {need}) at {data.level_name} (samples): {_levels(short)}; "
                    f"those {quantile_name(q)} values are close to the maximum seen and unstable.",
                    "Lengthen --step-time (samples grow with step time x concurrency) or read "
                    "a lower percentile for those steps.",
                )
            )

    # 2. Poll interval coarser than a phase: its duration is mostly interpolation.
    resolution = poll_resolution_s(data)
    coarse = []
    for phase in TIMED_PHASES:
        stats = data.merged.get(phase)
        median = stats.quantiles.get(0.5) if stats else None
        if median is not None and data.poll_interval_s > median / 1e6:
            coarse.append(f"{phase} (median {median / 1e6:.3g} s)")
    if coarse:
        out.append(
            ReportWarning(
                "coarse-polling",
                f"The poll interval ({data.poll_interval_s:g} s) is longer than the median "
                f"{_levels(coarse)}; each phase boundary is only known within "
                f"+-{resolution:.3g} s, so those phase times are mostly interpolation.",
                "Rerun with --poll-interval at most half the shortest median phase, or read "
                "phase times as upper bounds.",
            )
        )

    # 3. Achieved concurrency far below the target: the step measured lighter load.
    low = [
        f"{s.target} (achieved {s.achieved:.3g})"
        for s in data.steps
        if s.target > 0
        and s.journeys + s.warmup_journeys > 0
        and s.achieved < ACHIEVED_FRACTION * s.target
        and s.arrival_rate is None  # the open model's target is a cap, not a goal
    ]
    if low:
        out.append(
            ReportWarning(
                "low-concurrency",
                f"Achieved concurrency was below {ACHIEVED_FRACTION:.0%} of the target at: "
                f"{_levels(low)}; those steps measured a lighter load than their label.",
                "Look for create rejections (users pause after one) or a saturated load "
                "generator (add workers with --processes); plot results against achieved, "
                "not target, concurrency.",
            )
        )

    # 4. Many unobserved phases: phase breakdowns then describe the slow journeys only.
    ready = sum(s.ready for s in data.steps)
    if ready:
        missed = []
        for phase in TIMED_PHASES:
            if phase in data.estimates:
                continue  # estimated from every journey's interval, the missed ones included
            n = sum(s.unobserved.get(phase, 0) for s in data.steps)
            if n > UNOBSERVED_FRACTION * ready:
                missed.append(f"{phase} ({n / ready:.0%})")
        if missed:
            out.append(
                ReportWarning(
                    "unobserved-phases",
                    f"No poll saw these phases in a large share of ready journeys: "
                    f"{_levels(missed)}; their times come only from journeys slow enough "
                    "to be caught, so the phase plot overstates them.",
                    "Rerun with a shorter --poll-interval (these phases are shorter than it).",
                )
            )

    # 5. Warm-up larger than the measured part: most of each step was thrown away.
    heavy = [
        f"{s.level:g} ({s.warmup_journeys} warm-up vs {s.journeys} measured)"
        for s in data.steps
        if s.warmup_journeys > s.journeys
    ]
    if heavy:
        out.append(
            ReportWarning(
                "warmup-dominates",
                f"Warm-up journeys outnumber measured ones at {data.level_name}: {_levels(heavy)}.",
                "Lengthen --step-time or shorten --settle so most of each step is measured.",
            )
        )

    # 6. Nothing became ready: every latency plot is empty.
    if not ready:
        out.append(
            ReportWarning(
                "no-ready",
                "No measured journey reached ready; latency plots and tables are empty.",
                "Check the failure table and the target (host, API key, capacity) and rerun.",
            )
        )

    # 7. The outcome invariant broke: counts in this report do not add up.
    if not data.totals.get("invariant_ok", True):
        out.append(
            ReportWarning(
                "invariant",
                "Outcomes do not add up to the journeys started; counts may be wrong.",
                "Report this as a harness bug with the results file attached.",
            )
        )

    # 8. Sessions left alive cost money on a real provider.
    if data.left_alive:
        out.append(
            ReportWarning(
                "leaked-sessions",
                f"{data.left_alive} session(s) were still alive after the clean-up sweep.",
                "End them by hand (ids are in the results file's cleanup section).",
            )
        )

    # 10. A saturated generator: its own lateness reads as the target's latency.
    saturated = [
        f"{s.level:g} ({_lags(s.generator)})"
        for s in data.steps
        if s.generator and s.generator.get("saturated")
    ]
    if saturated:
        out.append(
            ReportWarning(
                "saturated-generator",
                f"The load generator was saturated at {data.level_name} {_levels(saturated)}: "
                f"polls or the event loop ran more than a tenth of the poll interval "
                f"({data.poll_interval_s:g} s) late, so latencies there include the generator's "
                "own lateness.",
                "Run fewer users per worker: more workers (--processes N, or more --worker "
                "processes), or a longer --poll-interval; keep other work off the load machine.",
            )
        )

    # 11. Open model: arrivals turned away because --max-in-flight journeys were in flight.
    dropped = [
        f"{s.level:g} ({s.dropped_share:.1%})"
        for s in data.steps
        if s.dropped_share and s.dropped_share > data.capacity.slo.failure_rate_limit
    ]
    if dropped:
        out.append(
            ReportWarning(
                "dropped-arrivals",
                f"Arrivals were dropped because --max-in-flight journeys were already in flight at "
                f"arrival rate (share of arrivals): {_levels(dropped)}; those steps did not offer "
                "the target their full rate, and fail the SLO for it.",
                "Raise --max-in-flight above arrival rate x time in flight (Little's law); if the "
                "target's ready time grows step by step, this is the queue the closed model hides.",
            )
        )

    # 12. Connect check failures: ready but not usable.
    causes: dict[str, int] = {}
    for s in data.steps:
        for cause, n in s.cdp_errors.items():
            causes[cause] = causes.get(cause, 0) + n
    if causes:
        listed = ", ".join(f"{c} ({n})" for c, n in sorted(causes.items(), key=lambda kv: -kv[1]))
        out.append(
            ReportWarning(
                "unusable-sessions",
                f"Sessions said ready but the CDP check failed: {listed}.",
                "Check the provider's cdp_url (and --cdp-timeout); these count as failures.",
            )
        )

    # 13. Time in no known phase: the provider's answers did not name the phase.
    unknown = data.merged.get("unknown")
    if unknown is not None and ready and unknown.count > UNOBSERVED_FRACTION * ready:
        out.append(
            ReportWarning(
                "unknown-phase",
                f"{unknown.count} of {ready} ready journeys spent time in answers that named no "
                "phase the API doc lists (no progress, an unknown word, or the phase ahead of the "
                "status): shown as `unknown`, never charged to a named phase.",
                "Nothing to fix on this side; the phase breakdown is as fine as the provider's "
                "answers allow.",
            )
        )

    # 9. A worker vanished: its unshipped journeys (at most its last 2 s) are missing.
    if data.workers_lost:
        out.append(
            ReportWarning(
                "worker-lost",
                f"{len(data.workers_lost)} worker(s) were lost mid-run; journeys they had not "
                "yet shipped to the master are missing and the ones in flight count as aborted.",
                "Check the lost workers' logs and resources (memory, CPU) and rerun.",
            )
        )
    return out


__all__ = ["ReportWarning", "samples_for_interval", "warnings_for"]
