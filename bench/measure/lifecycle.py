"""A run's stages and what a signal means in each: a small state machine, no Locust needed.

    IDLE --start--> RUNNING --ladder over--> DRAINING --drained--> FINALISING --> FINISHED
                       \\________________________/
                         first SIGINT/SIGTERM: INTERRUPT (abort journeys, write the results,
                         end the sessions, then finish as usual); a second one, or one while
                         IDLE/FINISHED: STOP_NOW (write what was gathered, no network, exit)

A web-UI process holds several runs in turn: `start` begins the next one afresh.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Stage(enum.Enum):
    IDLE = "idle"  # no run yet
    RUNNING = "running"  # the ladder is climbing
    DRAINING = "draining"  # the ladder is over: no new journeys, in-flight ones finish
    FINALISING = "finalising"  # clean-up, results, exit code (once per run)
    FINISHED = "finished"  # results written: a later signal must not overwrite them


class SignalAction(enum.Enum):
    INTERRUPT = "interrupt"
    STOP_NOW = "stop now"


@dataclass
class RunState:
    stage: Stage = Stage.IDLE
    interrupted: bool = False
    draining_since: float | None = None  # monotonic seconds

    def start(self) -> None:
        self.stage = Stage.RUNNING
        self.interrupted = False
        self.draining_since = None

    def drain(self, now: float) -> bool:
        """Enter DRAINING; False when the run already drains (or is past it)."""
        if self.stage is not Stage.RUNNING:
            return False
        self.stage = Stage.DRAINING
        self.draining_since = now
        return True

    def finalise(self) -> bool:
        """Enter FINALISING; False when there is no run, or it finalises or finished already."""
        if self.stage in (Stage.IDLE, Stage.FINALISING, Stage.FINISHED):
            return False
        self.stage = Stage.FINALISING
        return True

    def finish(self) -> None:
        self.stage = Stage.FINISHED

    def signal(self) -> SignalAction:
        """What a SIGINT/SIGTERM does now (and remember that it came)."""
        if self.interrupted or self.stage in (Stage.IDLE, Stage.FINISHED):
            return SignalAction.STOP_NOW
        self.interrupted = True
        return SignalAction.INTERRUPT

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    @property
    def finalised(self) -> bool:
        """Finalising began (the clean-up and results are under way or done)."""
        return self.stage in (Stage.FINALISING, Stage.FINISHED)

    @property
    def finished(self) -> bool:
        return self.stage is Stage.FINISHED

    def drain_overdue(self, now: float, timeout: float) -> bool:
        """The drain has run past `timeout` seconds: finish with what was shipped."""
        return self.draining_since is not None and now - self.draining_since > timeout


__all__ = ["RunState", "SignalAction", "Stage"]
