"""The coordinator's view of the processes that run users: one local load side, or remote workers.

The coordinator says the same things to either (set up, a new step, drain) and asks
the same questions (in flight? drained? capped? lost? what was recorded?); only
here does it matter whether the answer is a method call or a Locust message.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.measure.cleanup import Orphans
from bench.measure.loadside import LoadSide
from bench.record.recorder import Recorder

log = logging.getLogger("bench")

MSG_SETUP = "bench_setup"  # master -> worker: run id, target kind, session quota
MSG_STEP = "bench_step"  # master -> worker: a new ladder step began
MSG_DRAIN = "bench_drain"  # master -> worker: the ladder is over
MSG_DELTA = "bench_delta"  # worker -> master: recorder delta (+ drained / capped flags)


class Fleet(Protocol):
    recorder: Recorder

    def start(self, setup: dict[str, Any], max_sessions: int | None) -> None: ...
    def enter_step(self, index: int) -> None: ...
    def drain(self) -> None: ...
    def maintain(self, setup: dict[str, Any], step: int | None, draining: bool) -> None: ...
    def in_flight(self) -> int: ...
    def drained(self) -> bool: ...
    def capped(self) -> bool: ...
    def lost(self) -> list[str]: ...
    def fix_lost(self) -> list[str]: ...
    def unresolved(self) -> Orphans: ...
    def refused(self) -> str | None: ...
    def take_journey_lines(self) -> list[bytes]: ...
    def before_finalise(self) -> None: ...
    def stop_users_now(self) -> bool: ...
    def size(self) -> int: ...


def split_quota(total: int | None, parts: int) -> list[int | None]:
    """Share a session cap between workers as evenly as integers allow."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, max(parts, 1))
    return [base + (1 if i < extra else 0) for i in range(parts)]


class LocalFleet:
    """One process runs the users and coordinates: the load side is right here."""

    def __init__(self, load: LoadSide, runner: Any) -> None:
        self.load = load
        self.runner = runner

    @property
    def recorder(self) -> Recorder:
        return self.load.recorder

    def start(self, setup: dict[str, Any], max_sessions: int | None) -> None:
        self.load.setup({**setup, "quota": max_sessions, "share": [0, 1]})

    def enter_step(self, index: int) -> None:
        self.load.switch_step(index)

    def drain(self) -> None:
        self.load.request_drain()

    def maintain(self, setup: dict[str, Any], step: int | None, draining: bool) -> None:
        pass  # nobody joins a local run

    def in_flight(self) -> int:
        return self.load.inflight

    def drained(self) -> bool:
        # What cut journeys left behind is ended once, by before_finalise.
        return self.load.inflight == 0

    def capped(self) -> bool:
        return self.load.capped

    def lost(self) -> list[str]:
        return []

    def fix_lost(self) -> list[str]:
        return []

    def unresolved(self) -> Orphans:
        orphans = self.load.orphans
        return Orphans(dict(orphans.open), set(orphans.lost), orphans.lost_creates)

    def refused(self) -> str | None:
        return self.load.refused

    def take_journey_lines(self) -> list[bytes]:
        return self.load.journey_lines

    def before_finalise(self) -> None:
        self.load.account_busy()
        self.load.resolve_orphans()

    def stop_users_now(self) -> bool:
        self.runner.stop()  # fires test_stop, which finalises
        return True

    def size(self) -> int:
        return 1


class RemoteFleet:
    """The master's workers, reached through Locust's custom messages."""

    def __init__(self, runner: Any, missing_state: str) -> None:
        self.runner = runner
        # locust.runners.STATE_MISSING, passed in: this module stays free of Locust's import
        # (and its monkey-patching), so it is tested with a plain fake runner.
        self._missing = missing_state
        self.recorder = Recorder()
        self._reset()

    def _reset(self) -> None:
        self.workers: set[str] = set()  # the workers the run began with (plus late joiners)
        self.drained_workers: set[str] = set()
        self.capped_workers: set[str] = set()
        # per worker, per (step, warm-up), journeys shipped as started minus outcomes
        # shipped: what a lost worker still had in flight
        self.open_journeys: dict[str, Counter[tuple[int, bool]]] = {}
        self.remote_orphans = Orphans()  # what the workers could not see ended
        self._refused: str | None = None
        self.journey_lines: list[bytes] = []
        self._lost: list[str] | None = None  # fixed when finalising, so every use agrees
        self.max_sessions: int | None = None

    def start(self, setup: dict[str, Any], max_sessions: int | None) -> None:
        self.recorder = Recorder()
        self._reset()
        self.max_sessions = max_sessions
        workers = sorted(self.runner.clients.keys())
        self.workers = set(workers)
        # Worker i of n takes the open model's arrivals i, i+n, ...: the rate split exactly.
        quotas = split_quota(max_sessions, len(workers))
        for i, (client_id, quota) in enumerate(zip(workers, quotas, strict=True)):
            message = {**setup, "quota": quota, "share": [i, len(workers)]}
            self.runner.send_message(MSG_SETUP, message, client_id=client_id)

    def enter_step(self, index: int) -> None:
        self.runner.send_message(MSG_STEP, {"index": index})

    def drain(self) -> None:
        self.runner.send_message(MSG_DRAIN, {})

    def live(self) -> set[str]:
        """Connected workers Locust has not marked missing (a lost one never drains)."""
        return {c.id for c in self.runner.clients.values() if c.state != self._missing}

    def maintain(self, setup: dict[str, Any], step: int | None, draining: bool) -> None:
        """Set up a worker that connected after the run began.

        Locust hands it users at once; without the run's setup they would idle and the
        drain would wait for a worker that never ships.  --max-sessions was split among
        the workers present at the start, so a late one gets no session quota then.
        """
        late = sorted(self.live() - self.workers)
        if not late or draining:
            return
        quota = None if self.max_sessions is None else 0
        for client_id in late:
            # The open model's rate was split among the workers present at the start: a
            # late one takes no arrivals (share None), as it takes no session quota.
            message = {**setup, "quota": quota, "share": None}
            self.runner.send_message(MSG_SETUP, message, client_id=client_id)
            if step is not None:
                self.runner.send_message(MSG_STEP, {"index": step}, client_id=client_id)
            self.workers.add(client_id)
        log.warning(
            "worker(s) %s joined mid-run and were set up%s",
            ", ".join(late),
            "" if quota is None else " with no session quota (--max-sessions was split at start)",
        )

    def in_flight(self) -> int:
        # Shipped as started minus shipped outcomes: each worker's in-flight count at its
        # last delta. A lost worker's no longer counts.
        live = self.live()
        return sum(sum(self.open_journeys.get(client, Counter()).values()) for client in live)

    def drained(self) -> bool:
        return self.live() <= self.drained_workers

    def capped(self) -> bool:
        expected = self.live()
        return bool(expected) and expected <= self.capped_workers

    def lost(self) -> list[str]:
        """Workers the run began with that vanished before they drained.

        A worker that shipped its last delta (drained) and then stopped or quit, as every
        worker does at the end of a web-UI run, is done, not lost.
        """
        if self._lost is not None:
            return self._lost
        return sorted(self.workers - self.live() - self.drained_workers)

    def fix_lost(self) -> list[str]:
        """Fix the lost workers now (the exit code, the aborts and the file agree), and end
        their journeys shipped as started but never finished as `aborted`: they were cut
        short by the worker's death; without an outcome they would break the invariant
        (outcomes add up to journeys started) for a loss already reported."""
        self._lost = self.lost()
        for client_id in self._lost:
            balance = self.open_journeys.get(client_id, Counter())
            for (step, warmup), count in sorted(balance.items()):
                for _ in range(max(count, 0)):
                    self.recorder.journey_finished(step, warmup, JourneyResult(Outcome.ABORTED))
            balance.clear()
        return self._lost

    def unresolved(self) -> Orphans:
        o = self.remote_orphans
        return Orphans(dict(o.open), set(o.lost), o.lost_creates)

    def refused(self) -> str | None:
        return self._refused

    def take_journey_lines(self) -> list[bytes]:
        return self.journey_lines

    def before_finalise(self) -> None:
        pass  # each worker ended its own journeys' sessions before it said "drained"

    def stop_users_now(self) -> bool:
        # Not runner.stop(): Locust would then quit the master within 0.5 s and cut off
        # the workers' last deltas.  The ladder's own drain does it instead: the shape
        # ramps to 0 users with a stop timeout of 0 (sent with the spawn message), so
        # workers cut their journeys now, end their sessions, ship and drain; the shape
        # then ends the run and test_stop finalises.
        return False

    def size(self) -> int:
        return len(self.workers)

    def on_report(self, client_id: str, data: dict[str, Any]) -> None:
        """A worker's shipped delta (see LoadSide.report)."""
        delta = data.get("delta", {})
        self.recorder.merge_wire(delta)
        balance = self.open_journeys.setdefault(client_id, Counter())
        for index, step in delta.items():
            for warmup, name in ((False, "measured"), (True, "warmup")):
                part = step.get(name, {})
                done = sum(int(v) for v in part.get("outcomes", {}).values())
                balance[int(index), warmup] += int(part.get("journeys", 0)) - done
        self.journey_lines.extend(data.get("journeys", []))
        for request_id, session_id in data.get("unresolved", []):
            self.remote_orphans.open[request_id] = session_id
        self.remote_orphans.lost.update(data.get("lost", []))
        self.remote_orphans.lost_creates += int(data.get("lost_creates", 0))
        if data.get("refused") and self._refused is None:
            self._refused = str(data["refused"])
        if data.get("drained"):
            self.drained_workers.add(client_id)
        if data.get("capped"):
            self.capped_workers.add(client_id)


__all__ = [
    "MSG_DELTA",
    "MSG_DRAIN",
    "MSG_SETUP",
    "MSG_STEP",
    "Fleet",
    "LocalFleet",
    "RemoteFleet",
    "split_quota",
]
