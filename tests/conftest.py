"""Shared fixtures: a real simulator on loopback (fast profile, truth on) for the whole session."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bench.simulator.process import SimulatorProcess

SIM_API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def api_key() -> str:
    return SIM_API_KEY


@pytest.fixture(scope="session")
def simulator(api_key: str) -> Iterator[SimulatorProcess]:
    """A real `bench simulate` child: fast profile (time x0.02), truth endpoints, fixed seed."""
    with SimulatorProcess("fast", seed=1234, truth=True, api_key=api_key) as sim:
        yield sim


@pytest.fixture(scope="session")
def api(simulator: SimulatorProcess, api_key: str) -> Iterator[httpx.Client]:
    """A keep-alive client carrying the right key (session-scoped, so hypothesis may use it)."""
    with httpx.Client(
        base_url=simulator.url, headers={"anchor-api-key": api_key}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def no_faults(simulator: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The shared simulator with its fault table reset after the test, whatever it set."""
    simulator.set_faults({})
    yield simulator
    simulator.set_faults({})


@pytest.fixture
def poll_ready(api: httpx.Client) -> Callable[[str], dict[str, Any]]:
    """Poll an async request until it leaves pending/processing; returns its `data`."""

    def poll(request_id: str, deadline_s: float = 20.0) -> dict[str, Any]:
        # Waiting on a condition with a bound, not sleeping as synchronisation: the fast
        # profile makes a session ready in tens of milliseconds of simulated time.
        end = time.monotonic() + deadline_s
        while True:
            response = api.get(f"/v1/sessions/async/{request_id}/status")
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            if data["status"] not in ("pending", "processing"):
                return data
            assert time.monotonic() < end, f"request {request_id} still {data['status']}"
            time.sleep(0.005)

    return poll


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and an ErrorResponse body whose code is that status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def require_chromium(path: str | None) -> None:
    """Skip a test that needs Chromium where it is missing, but fail it where CI asked for it.

    `.ci/run` installs Debian's chromium and sets BENCH_REQUIRE_CHROMIUM=1, so on CI a
    missing browser is a failure, never a test silently skipped.
    """
    if path and os.path.exists(path):
        return
    reason = "chromium is not installed (apt-get install chromium; .ci/run does)"
    if os.environ.get("BENCH_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"BENCH_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)
