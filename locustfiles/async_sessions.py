"""Async-session journeys under stepped concurrency: `locust -f locustfiles/async_sessions.py`.

With no --host, the embedded simulator is started on loopback; with --host, the
key comes from ANCHOR_API_KEY.  The logic lives in the `bench` package.
"""

from typing import Any

from locust import User, constant, task
from locust.env import Environment

from bench.measure import plugin  # registers options and event listeners
from bench.measure.option_table import DEFAULT_CLIENT_TIMEOUT
from bench.measure.shapes import LadderShape

__all__ = ["AsyncSessionUser", "LadderShape"]


class AsyncSessionUser(User):
    """One user = one journey at a time: concurrency is the number of users.

    A plain User: its connection to the target is the harness's own transport
    (bench.measure.transport.LocustTransport, made at the first journey and kept),
    which fires Locust's request events itself.
    """

    wait_time = constant(0)
    # A call slower than this counts as failed (a poll is retried with backoff, a
    # create ends in create_error); --client-timeout changes it.
    network_timeout = DEFAULT_CLIENT_TIMEOUT
    connection_timeout = 5.0
    transport: Any = None

    def __init__(self, environment: Environment) -> None:
        # Read per user, not at import: workers get the master's options only at spawn.
        timeout = getattr(environment.parsed_options, "client_timeout", None)
        if timeout:
            self.network_timeout = float(timeout)
            self.connection_timeout = min(self.connection_timeout, float(timeout))
        super().__init__(environment)

    @task
    def journey(self) -> None:
        plugin.run_journey(self)

    def on_stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
