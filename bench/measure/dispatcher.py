"""The open model's dispatcher: each scheduled arrival goes to an idle user, or is dropped.

Journeys start on schedule whatever the earlier ones are doing (k6's arrival-rate
executors).  The users of an open-model run are slots: each waits here for an
arrival; an arrival that finds every slot busy (--max-in-flight journeys in flight)
is counted `dropped`, never queued or delayed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

import gevent
import gevent.event
import gevent.queue

from bench.core.arrivals import ArrivalSchedule

# (scheduled instant, step, warm-up) of an arrival handed to a user; None: go home.
Arrival = tuple[float, int, bool] | None


class StepClock(Protocol):
    """What the dispatcher reads of its load side."""

    step_index: int
    step_started: float
    settle: float
    drain_requested: bool
    inflight: int


class Dispatcher:
    def __init__(
        self,
        side: StepClock,
        *,
        rates: list[float],
        arrivals: str,
        share: tuple[int, int] | None,
        rng: random.Random,
        may_ask: Callable[[], bool],
        on_dropped: Callable[[int, bool], None],
    ) -> None:
        self.side = side
        self.rates = rates
        self.arrivals = arrivals
        self.share = share  # worker j of n takes arrivals j, j+n, ...; None: none at all
        self.rng = rng
        self.may_ask = may_ask  # False once no more sessions may be asked for
        self.on_dropped = on_dropped
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._idle = 0  # users waiting for an arrival, not yet handed one
        self.changed = gevent.event.Event()
        self._greenlet = gevent.spawn(self._loop)

    def take(self) -> Arrival:
        """Block (this user) until an arrival is handed to it; None when the run drains."""
        self._idle += 1
        try:
            return self._queue.get()
        except BaseException:
            self._idle = max(0, self._idle - 1)  # killed while waiting
            raise

    def step_changed(self) -> None:
        self.changed.set()  # the schedule restarts at the new step's rate

    def drain(self) -> None:
        """Users waiting for an arrival that will not come: let them go."""
        self.changed.set()
        for _ in range(self._idle):
            self._queue.put(None)
        self._idle = 0

    def stop(self) -> None:
        self._greenlet.kill(block=False)

    def _loop(self) -> None:
        """Bounded by the process, as the reaper: between runs and while draining it waits."""
        side = self.side
        while True:
            self.changed.clear()
            step = side.step_index
            if self.share is None or side.drain_requested or step >= len(self.rates):
                self.changed.wait(1.0)
                continue
            index, count = self.share
            start = side.step_started
            if self._idle == 0 and side.inflight == 0:
                # The run's first arrivals: Locust is still spawning the users that will
                # take them.  Start the schedule when the first one waits (at most 2 s),
                # rather than drop arrivals no user could have taken yet.
                deadline = time.monotonic() + 2.0
                while self._idle == 0 and time.monotonic() < deadline:
                    gevent.sleep(0.005)
                start = max(start, time.monotonic())
            schedule = ArrivalSchedule(
                float(self.rates[step]), index, count, self.arrivals, start=start, rng=self.rng
            )
            while not side.drain_requested and side.step_index == step:
                at = schedule.next()
                delay = at - time.monotonic()
                if delay > 0 and self.changed.wait(delay):
                    break  # a new step (or the drain): a new schedule
                if side.drain_requested or side.step_index != step:
                    break
                self._arrive(step, at)

    def _arrive(self, step: int, at: float) -> None:
        if not self.may_ask():
            return  # no more sessions may be asked for: the arrival is not offered at all
        warmup = at - self.side.step_started < self.side.settle
        if self._idle > 0:
            self._idle -= 1  # that user is taken, whether or not it has woken yet
            self._queue.put((at, step, warmup))
            return
        # Every user is busy: --max-in-flight journeys in flight.  Counted, not queued.
        self.on_dropped(step, warmup)


__all__ = ["Arrival", "Dispatcher"]
