"""Reading the simulator's ground truth (/_sim/truth): true phase durations per request."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

_ORDER = ("queued", "provisioning", "configuring", "ready")


def true_durations(request: Mapping[str, Any]) -> dict[str, float]:
    """Seconds spent in each phase, and create -> ready, for one request of the truth.

    A phase the request never entered (e.g. no queueing) has no entry; `ready` is
    absent when the request never became ready.  `ready` ends at `ready_t`, the true
    ready instant: when the *status* turned ready.  With the phase-first dialect the
    phase said ready earlier: `configuring` ends there, and `phase_ready_lead` is the
    time from the phase's ready to the status's (absent when they coincide).
    """
    starts: dict[str, float] = {}
    for transition in request["transitions"]:
        starts.setdefault(transition["phase"], transition["t"])
    out: dict[str, float] = {}
    ready_t = request.get("ready_t")
    if ready_t is not None:
        out["ready"] = ready_t - request["created"]["t"]
        if "ready" in starts and starts["ready"] < ready_t:
            out["phase_ready_lead"] = ready_t - starts["ready"]
    for phase, following in itertools.pairwise(_ORDER):
        if phase in starts and following in starts:
            out[phase] = starts[following] - starts[phase]
    return out
