"""What a finished run leaves on disk: the results document, its files, and the report.

Narrow inputs: the run's marks, the configuration, the merged recorder, the clean-up
report and the timeline.  A report failure costs the report, never the results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure.harness_config import HarnessConfig
from bench.record.recorder import Recorder
from bench.record.runinfo import environment_metadata, iso
from bench.record.timeline import Timeline

log = logging.getLogger("bench")

SCENARIO_VERSION = 1
TIMELINE_INTERVAL = 1.0  # seconds between timeline samples (master / local)


@dataclass
class StepMark:
    index: int
    target: int  # users: the concurrency, or the open model's in-flight cap
    started: float  # monotonic
    ended: float | None = None
    arrival_rate: float | None = None  # the open model's sessions/s

    def describe(self) -> str:
        if self.arrival_rate is None:
            return f"{self.target} concurrent journeys"
        return f"{self.arrival_rate:g} sessions/s offered (at most {self.target} in flight)"


@dataclass
class RunMarks:
    """One test run's identity and step boundaries (a web-UI session can hold several runs)."""

    id: str
    started_mono: float
    started_wall: float
    steps: list[StepMark] = field(default_factory=list)
    timeline: Timeline = field(default_factory=lambda: Timeline(TIMELINE_INTERVAL))

    @property
    def tag(self) -> str:
        return f"bench-run-{self.id}"

    @property
    def current(self) -> StepMark | None:
        return self.steps[-1] if self.steps else None


@dataclass(frozen=True)
class Verdict:
    code: int
    why: str
    reason: str  # how the run ended: stopped, interrupted, quit, ...


def results_document(
    run: RunMarks,
    *,
    now: float,
    verdict: Verdict,
    config: HarnessConfig,
    target: dict[str, Any],
    workers: int,
    workers_lost: Sequence[str],
    recorder: Recorder,
    cleanup: dict[str, Any],
) -> dict[str, Any]:
    from bench.record.redact import redact_config
    from bench.record.results import CLOSED_MODEL, StepInfo, build_document

    ended_wall = run.started_wall + (now - run.started_mono)
    run_meta = {
        "id": run.id,
        "release": config.release,
        "target": target,
        "workers": workers,
        # Optional (v2 tolerates extra run keys): ids of workers lost mid-run.
        "workers_lost": list(workers_lost),
        "started_at": iso(run.started_wall),
        "ended_at": iso(ended_wall),
        "duration_s": round(now - run.started_mono, 3),
        "exit_code": verdict.code,
        "exit_reason": verdict.why,
        "end_reason": verdict.reason,
        **environment_metadata(),
    }
    config_meta = {
        "poll_interval_s": config.poll_interval,
        "ladder": list(config.ladder.levels),
        "step_time_s": config.ladder.step_time,
        "settle_s": config.ladder.settle,
        "ready_timeout_s": config.ready_timeout,
        "hold_s": config.hold,
        "max_sessions": config.max_sessions,
        "session_config": redact_config(config.session_config),
        "session_config_source": config.session_config_source,
        "max_poll_errors": config.max_poll_errors,
        "protocol_error_threshold": config.protocol_error_threshold,
        "scenario_version": SCENARIO_VERSION,
        "model": config.open_model.to_document() if config.open_model else dict(CLOSED_MODEL),
        "cdp": None
        if config.cdp is None
        else {"check": True, "navigate": config.cdp.navigate, "timeout_s": config.cdp.timeout},
    }
    steps = [
        StepInfo(
            index=s.index,
            target=s.target,
            started=s.started - run.started_mono,
            ended=(s.ended or now) - run.started_mono,
            arrival_rate=s.arrival_rate,
        )
        for s in run.steps
    ]
    return build_document(
        run=run_meta,
        config=config_meta,
        steps=steps,
        recorder=recorder,
        cleanup=cleanup,
        timeline=run.timeline.to_document(),
    )


def results_dir(config: HarnessConfig, run_id: str) -> Path:
    return Path(config.results_dir or Path("reports") / run_id)


def write_run(directory: Path, document: dict[str, Any], journey_lines: list[bytes] | None) -> None:
    """results.json (atomically), the HDR interval logs, and journeys.jsonl when asked for."""
    from bench.record.hlog import write_hlogs
    from bench.record.results import write_results

    directory.mkdir(parents=True, exist_ok=True)
    write_results(directory / "results.json", document)
    write_hlogs(directory / "hlog", document)
    if journey_lines is not None:
        (directory / "journeys.jsonl").write_bytes(b"".join(journey_lines))
    log.info("results written to %s", directory / "results.json")


def build_run_report(directory: Path) -> None:
    """Build the report next to the results; a failure costs the report, never the data."""
    from bench.present.report import build_report

    try:
        html = build_report([directory / "results.json"], directory)
    except Exception as exc:  # any bug in the report must not turn a good run into a crash
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.error("report not built (the results are kept): %s", first)
        return
    log.info("report written to %s", html)


__all__ = [
    "RunMarks",
    "StepMark",
    "Verdict",
    "build_run_report",
    "results_dir",
    "results_document",
    "write_run",
]
