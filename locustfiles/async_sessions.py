"""Async-session journeys under stepped concurrency: `locust -f locustfiles/async_sessions.py`.

With no --host, the embedded simulator is started on loopback; with --host, the
key comes from ANCHOR_API_KEY.  The logic lives in the `bench` package.
"""

from locust import FastHttpUser, constant, task
from locust.env import Environment

from bench.measure import plugin  # registers options and event listeners
from bench.measure.option_table import DEFAULT_CLIENT_TIMEOUT
from bench.measure.shapes import LadderShape

__all__ = ["AsyncSessionUser", "LadderShape"]


class AsyncSessionUser(FastHttpUser):
    """One user = one journey at a time: concurrency is the number of users."""

    wait_time = constant(0)
    # A call slower than this counts as failed (a poll is retried with backoff, a
    # create ends in create_error); --client-timeout changes it.
    network_timeout = DEFAULT_CLIENT_TIMEOUT
    connection_timeout = 5.0
    # Locust's defaults are not to verify TLS and to follow redirects (rewriting a
    # DELETE into a GET and keeping the key across origins): neither, here.
    insecure = False
    max_redirects = 0

    def __init__(self, environment: Environment) -> None:
        # Read per user, not at import: workers get the master's options only at spawn.
        timeout = getattr(environment.parsed_options, "client_timeout", None)
        if timeout:
            self.network_timeout = float(timeout)
            self.connection_timeout = min(self.connection_timeout, float(timeout))
        tls = plugin.load_side().tls  # the run's setup: --insecure / --ca-bundle
        self.insecure = not tls.verify
        self.ssl_context_factory = tls.context
        super().__init__(environment)

    @task
    def journey(self) -> None:
        plugin.run_journey(self)
