"""Async-session journeys under stepped concurrency: `locust -f locustfiles/async_sessions.py`.

With no --host, the embedded simulator is started on loopback; with --host, the
key comes from ANCHOR_API_KEY.  The logic lives in the `bench` package.
"""

from locust import FastHttpUser, constant, task

from bench import plugin  # noqa: F401  (registers options and event listeners)
from bench.plugin import harness
from bench.shapes import LadderShape

__all__ = ["AsyncSessionUser", "LadderShape"]


class AsyncSessionUser(FastHttpUser):
    """One user = one journey at a time: concurrency is the number of users."""

    wait_time = constant(0)
    # A status call slower than this counts as a failed poll (retried with backoff).
    network_timeout = 10.0
    connection_timeout = 5.0

    @task
    def journey(self) -> None:
        harness().run_journey(self)
