"""The run's exit code and its one-line reason, from what was counted (pure).

The order is the precedence: the first problem found names the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.core import exitcodes
from bench.core.outcomes import Outcome


def exit_verdict(
    *,
    journeys: int,
    outcomes: Mapping[str, int],
    violations: Sequence[str],
    protocol_error_threshold: float,
    lost_workers: Sequence[str],
    cleanup: Mapping[str, Any],
) -> tuple[int, str]:
    protocol = outcomes.get(Outcome.PROTOCOL_ERROR.value, 0)
    if journeys and outcomes.get(Outcome.CREATE_ERROR.value, 0) == journeys:
        return exitcodes.TARGET_UNREACHABLE, "target unreachable: no create call was answered"
    if journeys and protocol / journeys > protocol_error_threshold:
        return (
            exitcodes.PROTOCOL_ERRORS,
            f"{protocol} of {journeys} journeys ended in protocol errors",
        )
    if lost_workers:
        # Before leaks: a lost worker's unshipped journeys and unended sessions are
        # exactly what nobody can account for, and the leak count may include them.
        return (
            exitcodes.WORKER_LOST,
            f"{len(lost_workers)} worker(s) lost mid-run ({', '.join(lost_workers)}); their "
            "unshipped journeys are missing",
        )
    leaked = cleanup.get("leaked", 0)
    if leaked:
        alive = cleanup.get("left_alive", 0)
        return (
            exitcodes.LEAKED_SESSIONS,
            f"{leaked} sessions not confirmed ended ({alive} still alive after the sweep)",
        )
    if violations:
        return exitcodes.INVARIANT_BROKEN, "outcomes do not add up: " + "; ".join(violations)
    if not journeys:
        return exitcodes.NO_JOURNEYS, "no journey ran"
    return exitcodes.OK, "clean run"


__all__ = ["exit_verdict"]
