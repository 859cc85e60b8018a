"""The embedded simulator of the async-session API: profiles, pure model, HTTP server, launcher."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.simulator.deviations import DEVIATIONS, Deviation, deviations_for
from bench.simulator.model import (
    Accepted,
    AsyncRequestView,
    EndResult,
    Rejected,
    SessionModel,
    SessionView,
)
from bench.simulator.profile import (
    ENDPOINTS,
    DialectParams,
    EndpointFaults,
    Profile,
    ProfileError,
    available_profiles,
    load_profile,
    profile_with_faults,
)

if TYPE_CHECKING:
    from bench.simulator.process import SimulatorError, SimulatorProcess

# The launcher pulls in aiohttp and httpx; import it only when asked for, so that
# code needing just profiles or the model (Locust workers, the model's tests) stays light.
_LAZY = {"SimulatorProcess": "bench.simulator.process", "SimulatorError": "bench.simulator.process"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEVIATIONS",
    "ENDPOINTS",
    "Accepted",
    "AsyncRequestView",
    "Deviation",
    "DialectParams",
    "EndResult",
    "EndpointFaults",
    "Profile",
    "ProfileError",
    "Rejected",
    "SessionModel",
    "SessionView",
    "SimulatorError",
    "SimulatorProcess",
    "available_profiles",
    "deviations_for",
    "load_profile",
    "profile_with_faults",
]
