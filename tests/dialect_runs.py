"""One real harness run against one simulator dialect, with what the simulator knows after it.

Shared by tests/test_dialect_matrix.py (which asserts) and benchmarks/dialect_matrix.py
(which prints the matrix for the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust_runs import Finished, LocustProcess, finish

from bench.simulator.process import SimulatorProcess

KEY = "canary-key-dialect-matrix-77c2"
ARGS = (
    "--ladder", "4", "--step-time", "2.5", "--settle", "0.2", "--poll-interval", "0.01",
    "--ready-timeout", "10", "--no-report", "--journey-log",
)  # fmt: skip


@dataclass
class DialectRun:
    run: Finished
    counters: dict[str, Any]
    truth: dict[str, Any]

    @property
    def ours(self) -> dict[str, dict[str, Any]]:
        """The run's requests in the ground truth, by request id."""
        return {r["request_id"]: r for r in self.truth["requests"] if self.run.tag in r["tags"]}


def run_dialect(
    profile: str, out: Path, seed: int = 5, harness: Path | None = None
) -> DialectRun:
    """One run against `profile`; `harness`: another checkout's harness (its .venv and
    locustfile) instead of this one, e.g. an older commit's, against this simulator."""
    with SimulatorProcess(profile, seed=seed, truth=True, api_key=KEY) as sim:
        args = ["--headless", "--only-summary", "--host", sim.url, *ARGS, "--results-dir", str(out)]
        if harness is not None:
            command = [str(harness / ".venv/bin/python"), "-m", "locust", "-f",
                       str(harness / "locustfiles/async_sessions.py"), *args]  # fmt: skip
            proc = LocustProcess([], key=KEY, cwd=harness, command=command)
        else:
            proc = LocustProcess(args, key=KEY)
        run = finish(proc, out)
        return DialectRun(run, sim.counters(), sim.truth())
