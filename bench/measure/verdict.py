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
    refused: str | None = None,
    rejections: Mapping[str, int] | None = None,
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
    if refused is not None:
        return exitcodes.REFUSED, f"{refused}; the run stopped early"
    if not journeys:
        return exitcodes.NO_JOURNEYS, "no journey ran"
    if not outcomes.get(Outcome.READY.value, 0):
        return exitcodes.NO_READY, "no journey reached ready: " + _why_none(outcomes, rejections)
    return exitcodes.OK, "clean run"


def _why_none(outcomes: Mapping[str, int], rejections: Mapping[str, int] | None) -> str:
    """The commonest way journeys ended, so the one line says where to look."""
    name, count = max(
        ((k, v) for k, v in outcomes.items() if v), key=lambda kv: (kv[1], kv[0])
    )
    if name == Outcome.CREATE_REJECTED.value and rejections:
        code, times = max(rejections.items(), key=lambda kv: (kv[1], kv[0]))
        hint = " (does the provider serve POST /v1/sessions/async?)" if code == "404" else ""
        return f"the create was answered {code} {times} times{hint}"
    return f"{count} journeys ended in {name}"


__all__ = ["exit_verdict"]
