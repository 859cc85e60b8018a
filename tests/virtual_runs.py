"""The real driver against the real simulator model in virtual time: no sockets, no sleeps.

Each user is a greenlet (gevent's own dependency) whose `sleep` parks it on a heap
of wake-up times; the loop jumps the clock to the next wake-up.  Calls take a
latency drawn per call, and the model answers at the middle of it, as over a real
socket.  A run is a pure function of its seed: what the accuracy of an estimator or
a poll schedule comes to can be measured in a second, exactly, without timing noise.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import greenlet
import orjson

from bench.core.journey import JourneyResult
from bench.measure.api import Reply
from bench.measure.driver import Journey, JourneySettings, create_body
from bench.measure.harness_config import DEFAULT_SESSION_CONFIG
from bench.simulator import bodies
from bench.simulator.model import Accepted, SessionModel
from bench.simulator.profile import load_profile


class Loop:
    """Virtual time: greenlets sleep on a heap, the clock jumps to the next wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self.heap: list[tuple[float, int, Any]] = []
        self.seq = 0
        self.main = greenlet.getcurrent()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self._at(self.now + max(seconds, 0.0), greenlet.getcurrent())
        self.main.switch()

    def spawn(self, fn: Callable[[], None], at: float) -> None:
        self._at(at, greenlet.greenlet(fn))

    def _at(self, t: float, g: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, g))

    def run(self) -> None:
        while self.heap:
            t, _, g = heapq.heappop(self.heap)
            self.now = max(self.now, t)
            g.switch()


class ModelTransport:
    """The async-session API of a SessionModel, each call taking a random latency."""

    def __init__(self, loop: Loop, model: SessionModel, rng: random.Random, latency: float):
        self.loop, self.model, self.rng, self.latency = loop, model, rng, latency

    def _half(self) -> float:
        return self.latency / 2 * math.exp(0.3 * self.rng.gauss(0.0, 1.0))

    def create(self, body: bytes) -> Reply:
        self.loop.sleep(self._half())
        out = self.model.create(orjson.loads(body), self.loop.now)
        self.loop.sleep(self._half())
        if isinstance(out, Accepted):
            return Reply(200, orjson.dumps(bodies.created(out.request_id)))
        wait = None if out.retry_after_s is None else f"{out.retry_after_s:.3f}"
        return Reply(out.http_status, b"{}", wait)

    def status(self, request_id: str) -> Reply:
        self.loop.sleep(self._half())
        view = self.model.request(request_id, self.loop.now)
        self.loop.sleep(self._half())
        return Reply(200, orjson.dumps(bodies.async_status(view)))

    def release(self, session_id: str) -> Reply:
        self.loop.sleep(self._half())
        self.model.end_session(session_id, self.loop.now)
        self.loop.sleep(self._half())
        return Reply(204)


@dataclass
class Finished:
    journey: Journey
    result: JourneyResult
    truth: dict[str, Any]


def run(
    *,
    profile: str = "default",
    poll: float = 0.25,
    users: tuple[int, ...] = (8,),
    step_time: float = 60.0,
    seed: int = 1,
    latency: float = 0.002,
    planner: Any = None,
) -> list[Finished]:
    """Users running journeys back to back, `step_time` virtual seconds per ladder level.

    With a `planner` (bench.core.polling.Adaptive), each journey gets its plan and the
    planner learns from it, as bench.measure.loadside does.
    """
    loop = Loop()
    model = SessionModel(
        load_profile(profile, seed=seed), rng=random.Random(seed), start_mono=0.0,
        start_wall=1.7e9,
    )  # fmt: skip
    rng = random.Random(seed + 1)
    transport = ModelTransport(loop, model, rng, latency)
    settings = JourneySettings(poll, 60.0, 0.0, 5, create_body(DEFAULT_SESSION_CONFIG, "t"))
    finished: list[Finished] = []
    start = 0.0
    for n in users:
        end = start + step_time

        def user(end: float = end) -> None:
            own = random.Random(rng.random())
            while loop.now < end:
                plan = planner.plan(own) if planner is not None else None
                journey = Journey(transport, settings, loop.clock, loop.sleep, own, plan=plan)
                result = journey.run()
                if planner is not None:
                    planner.learn(result, plan)
                if journey.request_id:
                    truth = model.request_truth(journey.request_id, loop.now)
                    finished.append(Finished(journey, result, truth or {}))
                if journey.pause_s:
                    loop.sleep(journey.pause_s)

        for _ in range(n):
            loop.spawn(user, start + rng.random() * 0.5)
        loop.run()
        start = loop.now + 1.0
        loop.now = start
    return finished
