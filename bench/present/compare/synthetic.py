"""Synthetic results documents with known distributions, for comparison tests and power studies."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from bench.core.outcomes import Outcome
from bench.record.recorder import Recorder
from bench.record.results import Results, StepInfo, build_document, dumps, parse_results

# Ready times shaped like the default profile's: 1 s + 0.5 s x LogNormal(0, 0.3) (us).
READY_MEDIAN_US = 1_500_000.0


def ready_times(rng: random.Random, n: int, scale: float = 1.0, tail: float = 1.0) -> list[float]:
    """`n` default-profile-like ready times (us), times `scale`; `tail` stretches only the
    part above the median, so the p99 moves and the median does not."""
    out = []
    for _ in range(n):
        x = 1_000_000.0 + 500_000.0 * rng.lognormvariate(0.0, 0.3)
        if x > READY_MEDIAN_US:
            x = READY_MEDIAN_US + (x - READY_MEDIAN_US) * tail
        out.append(x * scale)
    return out


RUN: dict[str, Any] = {
    "id": "synthetic",
    "release": "synthetic",
    "git_revision": None,
    "target": {"kind": "simulator", "host": "http://127.0.0.1:1", "simulator_profile": "fast",
               "time_scale": 0.02},
    "started_at": "2026-01-01T00:00:00+00:00",
    "ended_at": "2026-01-01T00:01:00+00:00",
    "duration_s": 60.0,
}
CONFIG: dict[str, Any] = {
    "poll_interval_s": 0.25,
    "ladder": [],
    "step_time_s": 30.0,
    "settle_s": 5.0,
    "session_config": {"session": {"recording": {"active": True}}},
    "scenario_version": 1,
}


def synthetic_results(
    levels: Mapping[int, Mapping[str, Sequence[float]]],
    *,
    outcomes: Mapping[int, Mapping[str, int]] | None = None,
    release: str = "synthetic",
    run_id: str = "synthetic",
    config: Mapping[str, Any] | None = None,
    target_kind: str = "simulator",
) -> Results:
    """A validated Results: per target concurrency, metric -> samples (us).

    Every sample of the first metric listed at a level is one `ready` journey;
    `outcomes` adds journeys with other outcomes (no samples) per level.
    """
    recorder = Recorder()
    steps = []
    for index, (level, metrics) in enumerate(levels.items()):
        step = recorder.step(index)
        part = step.measured
        for metric, values in metrics.items():
            for value in values:
                part.record(metric, value)
        journeys = max((len(v) for v in metrics.values()), default=0)
        part.journeys += journeys
        part.outcomes[Outcome.READY.value] += journeys
        for name, count in (outcomes or {}).get(level, {}).items():
            part.journeys += count
            part.outcomes[name] += count
        recorder.add_busy(index, 30.0 * level)
        steps.append(StepInfo(index, level, 30.0 * index, 30.0 * (index + 1)))
    run = {**RUN, "id": run_id, "release": release,
           "target": {**RUN["target"], "kind": target_kind}}
    cfg = {**CONFIG, "ladder": list(levels), **(config or {})}
    doc = build_document(run=run, config=cfg, steps=steps, recorder=recorder,
                         cleanup={"left_alive": 0})
    # Through the loader, so the document is exactly what a file would give.
    return parse_results(dumps(doc), f"<{run_id}>")
