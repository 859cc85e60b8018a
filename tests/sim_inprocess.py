"""The real simulator app on loopback, in this process, with a clock the test moves.

The server (API and, when redirects may point there, the other origin) runs on its own
event loop in a thread; tests talk to it over real sockets with httpx, and time moves
only when the test calls `clock.advance`, so time-dependent answers are exact and no
test sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.simulator.profile import Profile, load_profile
from bench.simulator.server import SimulatorApp, build_app, start, stop_runners

KEY = "inprocess-key-0123"
HEADERS = {"anchor-api-key": KEY}


class FakeClock:
    """A monotonic clock that stands still until advanced."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


class InProcessSimulator:
    """One running simulator: `url`, `client`, `clock`, `app` and admin readers."""

    def __init__(self, app: SimulatorApp, url: str, clock: FakeClock) -> None:
        self.app = app
        self.url = url
        self.clock = clock
        self.client = httpx.Client(base_url=url, headers=HEADERS, timeout=10)

    @property
    def other_origin(self) -> str:
        return self.app.other_origin.url

    def counters(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_sim/counters", timeout=10).json()

    def dialect(self) -> dict[str, Any]:
        return self.counters()["dialect"]

    def truth(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_sim/truth", timeout=10).json()

    def request_truth(self, request_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sim/truth/{request_id}", timeout=10).json()

    def set_faults(self, table: dict[str, Any]) -> None:
        response = httpx.put(self.url + "/_sim/faults", json=table, timeout=10)
        assert response.status_code == 200, response.text

    # ------------------------------------------------------------------ journeys

    def create(self, **session: Any) -> str:
        response = self.client.post("/v1/sessions/async", json={"session": session})
        assert response.status_code in (200, 201, 202), response.text
        return response.json()["data"]["request_id"]

    def status(self, request_id: str) -> httpx.Response:
        return self.client.get(f"/v1/sessions/async/{request_id}/status")

    def run_until(self, request_id: str, done: Any, step: float = 0.002, limit: int = 5000) -> Any:
        """Poll, moving the clock `step` between polls, until done(data) is true."""
        for _ in range(limit):
            data = self.status(request_id).json()["data"]
            if done(data):
                return data
            self.clock.advance(step)
        raise AssertionError(f"{request_id}: condition not reached; last answer {data}")

    def ready_session(self, **session: Any) -> tuple[str, str]:
        """(request id, session id) of a new request polled until its session shows."""
        request_id = self.create(**session)
        data = self.run_until(request_id, lambda d: d["status"] == "ready" and "session" in d)
        return request_id, data["session"]["session_id"]


@contextmanager
def running(
    profile: Profile | str, *, seed: int = 1, clock: FakeClock | None = None
) -> Iterator[InProcessSimulator]:
    """The simulator of `profile` (a Profile, bundled name or path) on 127.0.0.1."""
    if isinstance(profile, str):
        profile = load_profile(profile, seed=seed)
    elif profile.seed is None:
        profile = dataclasses.replace(profile, seed=seed)
    clock = clock or FakeClock()
    app = build_app(profile, api_keys=[KEY], truth=True, clock=clock)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim-inprocess", daemon=True)
    thread.start()
    try:
        url, runners = asyncio.run_coroutine_threadsafe(start(app, "127.0.0.1", 0), loop).result(
            10
        )
        sim = InProcessSimulator(app, url, clock)
        try:
            yield sim
        finally:
            sim.client.close()
            asyncio.run_coroutine_threadsafe(stop_runners(runners), loop).result(10)
            assert sum(app.server_errors.values()) == 0, dict(app.server_errors)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

