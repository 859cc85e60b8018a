"""The target of a run: a provider (--host, key from the environment) or the embedded simulator.

Only the master or local process starts the simulator; workers learn the target's
kind from the run's setup and pick the matching key.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from bench.measure.harness_config import API_KEY_ENV, HarnessConfig

log = logging.getLogger("bench")

# The embedded simulator's key: a local, non-secret value, so that a real key in
# the environment is never sent to it.
SIMULATOR_KEY = "sim-local-key"
REMOTE = "remote"
SIMULATOR = "simulator"


def api_key_for(kind: str) -> str:
    """The key to send to a target of this kind (empty when the environment has none)."""
    return os.environ.get(API_KEY_ENV, "") if kind == REMOTE else SIMULATOR_KEY


class Target:
    """Where the run's calls go; owns the embedded simulator's process when there is one."""

    def __init__(self, config: HarnessConfig) -> None:
        self.kind = REMOTE if config.host else SIMULATOR
        self.api_key = SIMULATOR_KEY
        self.simulator: Any = None
        self.url: str | None = config.host

    def start(self, config: HarnessConfig) -> None:
        """Start the embedded simulator when no host was given (master or local only)."""
        if config.host:
            self.api_key = api_key_for(REMOTE)
            return
        from bench.simulator.process import SimulatorProcess

        self.simulator = SimulatorProcess(
            config.simulator_profile,
            time_scale=config.simulator_time_scale,
            truth=True,
            api_key=SIMULATOR_KEY,
        ).start()
        self.url = self.simulator.url
        log.info("embedded simulator (%s) at %s", config.simulator_profile, self.url)

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None


__all__ = ["REMOTE", "SIMULATOR", "SIMULATOR_KEY", "Target", "api_key_for"]
