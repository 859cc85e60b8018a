"""Helpers for the CDP tests: profiles in a temp folder, ready sessions, a raw CDP socket."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websocket

from bench.simulator.process import SimulatorProcess

# Fixed CDP latencies (unscaled seconds; the `fast` profile's x0.02 makes them 50, 30,
# 10 and 80 ms), so bounds taken from the truth can be checked against known values too.
FIXED_CDP = """
[cdp.handshake]
dist = "fixed"
value_s = 2.5
[cdp.first_command]
dist = "fixed"
value_s = 1.5
[cdp.command]
dist = "fixed"
value_s = 0.5
[cdp.navigate]
dist = "fixed"
value_s = 4.0
"""
HANDSHAKE_S, FIRST_S, COMMAND_S, NAVIGATE_S = 0.05, 0.03, 0.01, 0.08
WAIT_S = 20.0  # bound on any wait for a condition; nothing here measures by it


def write_profile(folder: Path, name: str, text: str) -> str:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def ready_session(api: httpx.Client, session: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create a request and poll until it leaves pending/processing; its `data`."""
    created = api.post("/v1/sessions/async", json={"session": session or {}})
    assert created.status_code == 200, created.text
    request_id = created.json()["data"]["request_id"]
    end = time.monotonic() + WAIT_S
    while True:
        data = api.get(f"/v1/sessions/async/{request_id}/status").json()["data"]
        if data["status"] not in ("pending", "processing"):
            assert data["status"] == "ready", data
            return data
        assert time.monotonic() < end, f"{request_id} still {data['status']}"
        time.sleep(0.005)


def wait_until(condition: Any, what: str, limit_s: float = WAIT_S) -> Any:
    """Poll `condition()` until it is truthy (bounded); its value."""
    end = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"not within {limit_s:g} s: {what}"
        time.sleep(0.02)


class RawCdp:
    """A bare CDP socket for checking the endpoint's own answers, byte by byte."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        if session_id is not None:
            message["sessionId"] = session_id
        self.ws.send(orjson.dumps(message).decode())
        return self.next_id

    def read(self) -> dict[str, Any]:
        return orjson.loads(self.ws.recv())

    def call(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """The whole answer to one command (events before it go to self.events)."""
        ident = self.send(method, params, session_id)
        while True:
            message = self.read()
            if message.get("id") == ident:
                return message
            self.events.append(message)

    def event(self, method: str) -> dict[str, Any]:
        for i, message in enumerate(self.events):
            if message["method"] == method:
                return self.events.pop(i)
        while True:
            message = self.read()
            if message.get("method") == method:
                return message
            self.events.append(message)

    def close(self) -> None:
        self.ws.close(timeout=1)


@contextlib.contextmanager
def fixed_cdp_simulator(folder: Path, *, seed: int, key: str) -> Iterator[SimulatorProcess]:
    """The fast profile with FIXED_CDP latencies, truth on: the CDP tests' simulator."""
    path = write_profile(folder, "cdp-fixed", 'extends = "fast"\n' + FIXED_CDP)
    with SimulatorProcess(path, seed=seed, truth=True, api_key=key) as process:
        yield process


def cdp_fixtures(*, seed: int, key: str, folder: str) -> tuple[Any, Any, Any]:
    """The CDP test modules' three fixtures: `sim, api, faults = cdp_fixtures(...)`.

    `sim` is one fixed-CDP simulator per module, `api` an httpx client of it with the
    key, `faults` the simulator with faults off before and after the test.
    """

    @pytest.fixture(scope="module")
    def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
        with fixed_cdp_simulator(tmp_path_factory.mktemp(folder), seed=seed, key=key) as process:
            yield process

    @pytest.fixture(scope="module")
    def api(sim: SimulatorProcess) -> Iterator[httpx.Client]:
        with api_client(sim, key) as client:
            yield client

    @pytest.fixture
    def faults(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
        with no_faults_around(sim) as process:
            yield process

    return sim, api, faults


@contextlib.contextmanager
def api_client(sim: SimulatorProcess, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"anchor-api-key": key}, timeout=10) as client:
        yield client


@contextlib.contextmanager
def no_faults_around(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """Faults off before and after a test that sets its own."""
    sim.set_faults({})
    try:
        yield sim
    finally:
        sim.set_faults({})
