"""summary.json (pure): the report's numbers for machines, versioned like the results file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bench.present.report.data import RunData
from bench.present.report.warnings import ReportWarning

FORMAT = "async-session-bench/report-summary"
# 1 - first release: per run, the SLO, capacity, knee, per-step verdicts and
#     quantiles (seconds) with their 95 % intervals, and warnings with fixes.
VERSION = 1


def _seconds(us: float | None) -> float | None:
    return None if us is None else round(us / 1e6, 6)


def run_summary(data: RunData, warnings: Sequence[ReportWarning]) -> dict[str, Any]:
    cap = data.capacity
    verdicts = {v.index: v for v in cap.steps}
    steps = []
    for s in data.steps:
        v = verdicts[s.index]
        metrics = {
            name: {
                "count": m.count,
                "mean_s": _seconds(m.mean_us),
                "quantiles_s": {f"{q:g}": _seconds(m.quantiles[q]) for q in m.quantiles},
                "intervals_s": {
                    f"{q:g}": None if iv is None else [_seconds(iv[0]), _seconds(iv[1])]
                    for q, iv in m.intervals.items()
                },
            }
            for name, m in s.metrics.items()
        }
        steps.append({
            "index": s.index,
            "target_concurrency": s.target,
            "achieved_concurrency": s.achieved,
            "journeys": s.journeys,
            "warmup_journeys": s.warmup_journeys,
            "outcomes": dict(s.outcomes),
            "failure_rate": s.failure_rate,
            "ready_per_s": s.ready_per_s,
            "slo_ready_quantile_s": v.ready_quantile_s,
            "slo_pass": v.passes,
            "slo_reason": v.reason,
            "metrics": metrics,
        })
    return {
        "run_id": data.run_id,
        "release": data.release,
        "target": data.target_label,
        "host": data.host,
        "slo": {
            "ready_quantile": cap.slo.ready_quantile,
            "ready_limit_s": cap.slo.ready_limit_s,
            "failure_rate_limit": cap.slo.failure_rate_limit,
        },
        "capacity": cap.concurrency,
        "capacity_highest_passing": cap.highest_passing,
        "capacity_first_failure": cap.first_failure,
        "knee": data.knee,
        "knee_factor": data.knee_factor,
        "poll_interval_s": data.poll_interval_s,
        "steps": steps,
        "warnings": [{"code": w.code, "message": w.message, "fix": w.fix} for w in warnings],
    }


def summary_json(runs: Sequence[tuple[RunData, Sequence[ReportWarning]]]) -> bytes:
    doc = {"format": FORMAT, "version": VERSION,
           "runs": [run_summary(data, warnings) for data, warnings in runs]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


__all__ = ["FORMAT", "VERSION", "run_summary", "summary_json"]
