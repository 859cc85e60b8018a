"""Report text (pure): the headline sentences and table rows, as unescaped plain strings.

HTML and Markdown renderers escape these; keeping the wording here means both
say exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.analyse.intervals import MISSED_SHARE, TURNBULL, bound_of
from bench.core import text
from bench.core.outcomes import OUTCOMES
from bench.present.report.data import TABLE_QUANTILES, MetricStats, RunData, poll_resolution_s
from bench.record.results import VERSION


def duration(us: float | None) -> str:
    """A duration for people (bench.core.text's rules), "-" when there is none."""
    return "-" if us is None else text.duration(us)


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else text.percent(fraction)


def with_interval(stats: MetricStats | None, q: float) -> str:
    """'1.2 s [1.1 s, 1.3 s]' (95 % CI) or just the value when the sample is too small."""
    if stats is None or stats.quantiles.get(q) is None:
        return "-"
    value = duration(stats.quantiles[q])
    interval = stats.intervals.get(q)
    if interval is None:
        return f"{value} (no CI)"
    return f"{value} [{duration(interval[0])}, {duration(interval[1])}]"


@dataclass(frozen=True)
class Headline:
    capacity: str
    knee: str
    slo: str


def headline(data: RunData) -> Headline:
    cap = data.capacity
    levels = data.levels
    slo = cap.slo.describe()
    if cap.level is None:
        failing = next((v for v in cap.steps if v.passes is False), None)
        why = f" ({data.level_name} {failing.target:g}: {failing.reason})" if failing else ""
        capacity = f"Capacity at SLO: none - no level tested meets it{why}."
    elif levels and cap.level == max(levels):
        capacity = (f"Capacity at SLO: at least {data.level_text(cap.level)} "
                    "(the highest level tested passed; extend the ladder to find the limit).")
    else:
        failing = next((v for v in cap.steps
                        if v.passes is False and v.target == cap.first_failure), None)
        why = f"; {cap.first_failure:g} fails: {failing.reason}" if failing else ""
        capacity = f"Capacity at SLO: {data.level_text(cap.level)}{why}."
    if cap.highest_passing is not None and cap.level is not None \
            and cap.highest_passing > cap.level:
        capacity += (f" (Level {cap.highest_passing:g} passed again above the failure; "
                     "it does not count.)")
    base = levels[0] if levels else None
    if data.knee is not None:
        knee = (f"Knee: median ready time bends at {data.level_name} {data.knee:g} "
                f"(first level above {data.knee_factor:g}x the median at {base:g}).")
    else:
        knee = (f"Knee: none within the levels tested (median ready time stayed within "
                f"{data.knee_factor:g}x the median at the lowest level).")
    return Headline(capacity=capacity, knee=knee, slo=slo)


STEP_HEADER = ("step", "target", "achieved", "journeys", "warm-up", "ready", "failure rate",
               "p50 ready [95 % CI]", "p90 ready [95 % CI]", "p99 ready [95 % CI]", "SLO")


def step_rows(data: RunData) -> list[tuple[str, ...]]:
    """One row per step: the summary table of summary.md and the report."""
    verdicts = {v.index: v for v in data.capacity.steps}
    rows = []
    for s in data.steps:
        v = verdicts.get(s.index)
        verdict = "-" if v is None or v.passes is None else ("pass" if v.passes else "FAIL")
        ready = s.metrics.get("ready")
        rows.append((
            str(s.index + 1), f"{s.level:g}", f"{s.achieved:.3g}", str(s.journeys),
            str(s.warmup_journeys), str(s.ready), percent(s.failure_rate),
            *(with_interval(ready, q) for q in TABLE_QUANTILES), verdict,
        ))
    return rows


OUTCOME_HEADER = ("step", "target", *OUTCOMES, "rejected by HTTP code")


def outcome_rows(data: RunData) -> list[tuple[str, ...]]:
    return [(str(s.index + 1), f"{s.level:g}", *(str(s.outcomes.get(o, 0)) for o in OUTCOMES),
             ", ".join(f"{code}: {n}" for code, n in sorted(s.rejections.items())) or "-")
            for s in data.steps]


METRIC_HEADER = ("metric", "samples", "mean", *(f"{text.quantile_name(q)} [95 % CI]"
                                                 for q in TABLE_QUANTILES))


def metric_rows(metrics: dict[str, MetricStats] | object) -> list[tuple[str, ...]]:
    rows = []
    for name, stats in metrics.items():  # type: ignore[attr-defined]
        rows.append((name, str(stats.count), duration(stats.mean_us),
                     *(with_interval(stats, q) for q in TABLE_QUANTILES)))
    return rows


def verdict_rows(data: RunData) -> list[tuple[str, ...]]:
    q = text.quantile_name(data.capacity.slo.ready_quantile)
    rows = []
    for v in data.capacity.steps:
        verdict = "not evaluated" if v.passes is None else ("pass" if v.passes else "FAIL")
        rows.append((str(v.index + 1), f"{v.target:g}",
                     duration(None if v.ready_quantile_s is None else v.ready_quantile_s * 1e6),
                     percent(v.failure_rate), verdict, v.reason))
    return [("step", "target", f"{q} ready", "failure rate", "verdict", "why"), *rows]


def resolution(data: RunData) -> str:
    r = poll_resolution_s(data)
    return (f"Poll interval {data.poll_interval_s:g} s: each phase boundary is estimated at the "
            f"midpoint between two polls, uncertain by half the gap (about +-{r:.3g} s); a "
            f"phase's duration by up to twice that.")


def estimation_note(data: RunData) -> str | None:
    """How `ready` and the phases were estimated; None for results without intervals."""
    if not data.estimates:
        return None
    missed = [m for m, e in data.estimates.items() if e.method == TURNBULL]
    which = (f" (here: {', '.join(missed)})" if missed else "")
    return (
        "Ready and phase times come from the interval each journey's polls leave for its "
        "true value, which certainly holds it. Each percentile is the percentile of the "
        "intervals' middles, except for a phase the polls missed (its interval reaching 0) "
        f"in at least {MISSED_SHARE:.0%} of journeys{which}: there middles would put a "
        "phase shorter than the gap between two polls at half that gap, so the estimate is "
        "Turnbull's nonparametric maximum-likelihood estimate from all the intervals "
        "(Turnbull 1976), which has no order-statistic confidence interval. Whatever the "
        "method, the true percentile over these journeys lies in the certain range shown "
        "(the same percentile of the intervals' lower and upper ends)."
    )


ACCURACY_HEADER = ("metric", "method", "journeys", "polls missed it",
                   *(f"{text.quantile_name(q)} [certain range]" for q in TABLE_QUANTILES),
                   "largest possible error")


def accuracy_rows(data: RunData) -> list[tuple[str, ...]]:
    """Per metric (all steps): method, estimate and certain range per percentile."""
    rows = []
    for name, est in data.estimates.items():
        cells = []
        worst = 0.0
        for q in TABLE_QUANTILES:
            value = est.quantiles.get(q)
            lo, hi = est.certain.get(q, (None, None))
            if value is None or lo is None or hi is None:
                cells.append("-")
                continue
            worst = max(worst, bound_of(value, (lo, hi)))
            cells.append(f"{duration(value)} [{duration(lo)}, {duration(hi)}]")
        rows.append((name, est.method, str(est.count), percent(est.missed_share), *cells,
                     duration(worst)))
    return rows


def run_facts(data: RunData) -> list[tuple[str, str]]:
    """Key/value lines describing the run."""
    facts = [
        ("run", data.run_id),
        ("release", data.release),
        ("target", data.target_label if data.host is None
         else f"{data.target_label} at {data.host}"),
        ("started", data.started_at),
        ("duration", f"{data.duration_s:g} s"),
        ("ladder", ", ".join(str(s.target) for s in data.steps)) if not data.open_model else (
            "arrival rates",
            ", ".join(f"{s.level:g}" for s in data.steps)
            + f" sessions/s (at most {max((s.target for s in data.steps), default=0)} in flight)",
        ),
        ("step time / settle", f"{data.step_time_s:g} s / {data.settle_s:g} s"),
        ("journeys", str(data.totals.get("journeys", 0))),
    ]
    if data.exit_reason:
        facts.append(("ended", data.exit_reason))
    if data.left_alive_ids:
        facts.append(("sessions left alive", ", ".join(data.left_alive_ids)))
    if data.source_version < VERSION:
        facts.append(("results format", f"version {data.source_version} (migrated)"))
    return facts


__all__ = [
    "ACCURACY_HEADER",
    "Headline",
    "accuracy_rows",
    "duration",
    "estimation_note",
    "headline",
    "metric_rows",
    "outcome_rows",
    "percent",
    "resolution",
    "run_facts",
    "step_rows",
    "verdict_rows",
    "with_interval",
]
