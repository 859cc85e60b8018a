"""Locust wiring: options, events and messages, handed to the run's roles.

Roles (each in its own module): the *coordinator* (bench.measure.coordinator) owns
the ladder, the timeline, the drain and the results, in the master or the one local
process; the *load side* (bench.measure.loadside) runs journeys and records them,
in each worker or the local process; a *fleet* (bench.measure.fleet) is how the
coordinator reaches the load sides.  Here only Locust's events and messages are
turned into calls on them.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from bench.core import exitcodes
from bench.core.text import one_line
from bench.measure.coordinator import Coordinator
from bench.measure.fleet import (
    MSG_DELTA,
    MSG_DRAIN,
    MSG_SETUP,
    MSG_STEP,
    LocalFleet,
    RemoteFleet,
)
from bench.measure.harness_config import ConfigError, from_options, is_loopback
from bench.measure.loadside import LoadSide
from bench.measure.option_table import add_options
from bench.measure.target import Target

log = logging.getLogger("bench")
# httpx logs every clean-up call at INFO; those belong in the results, not the console.
logging.getLogger("httpx").setLevel(logging.WARNING)

SHIP_INTERVAL = 2.0  # seconds between worker deltas


class _Roles:
    """What this process plays: a coordinator (master, local), a load side (worker, local)."""

    coordinator: Coordinator | None = None
    load: LoadSide | None = None
    shipper: Any = None


_roles = _Roles()


def coordinator() -> Coordinator:
    if _roles.coordinator is None:
        raise RuntimeError("the bench plugin was not initialised (no init event yet)")
    return _roles.coordinator


def load_side() -> LoadSide:
    if _roles.load is None:
        raise RuntimeError("the bench plugin was not initialised (no init event yet)")
    return _roles.load


def run_journey(user: Any) -> None:
    """The user's task: one journey on this process's load side."""
    load_side().run_journey(user)


def _probe_writable(directory: Path) -> None:
    """Create `directory` if needed and check a file can be written there (OSError if not)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
        pass


def _fail(message: str) -> None:
    # A user error: one line, exit code 2, no traceback (Locust would print one).
    print(f"Error: {one_line(message)}", file=sys.stderr, flush=True)
    os._exit(exitcodes.USAGE)


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    try:
        config = from_options(options)
    except ConfigError as exc:
        _fail(str(exc))
        return
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _roles.load = LoadSide(environment, node_id=str(getattr(runner, "client_id", "worker")))
        runner.register_message(MSG_SETUP, _on_setup)
        runner.register_message(MSG_STEP, _on_step)
        runner.register_message(MSG_DRAIN, _on_drain)
        # Ctrl-C in a terminal reaches every process of its group, the workers that
        # --processes forked included: the master ends the run and tells them.  A worker
        # on its own still stops at once on SIGTERM.
        gevent.signal_handler(signal.SIGINT, _worker_ignores_sigint)
        return
    target = Target(config)
    if isinstance(runner, MasterRunner):
        remote = RemoteFleet(runner, STATE_MISSING)

        def on_delta(environment: Environment, msg: Any, **_: Any) -> None:
            remote.on_report(msg.node_id, msg.data)

        runner.register_message(MSG_DELTA, on_delta)
        fleet: LocalFleet | RemoteFleet = remote
    else:
        _roles.load = LoadSide(environment)
        fleet = LocalFleet(_roles.load, runner)
    _roles.coordinator = Coordinator(environment, config, fleet, target)
    if not environment.stop_timeout:
        # Without it Locust kills users mid-poll when a step ends or the run stops.
        environment.stop_timeout = config.drain_timeout
    # gevent handlers replace Python's KeyboardInterrupt and run in their own greenlet.
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, _roles.coordinator.on_signal)
    directory = Path(config.results_dir or "reports")
    try:
        _probe_writable(directory)
    except OSError as exc:
        # Found now, not after the whole ladder has run (and been paid for).
        _fail(f"--results-dir: cannot write to {directory}: {exc.strerror or exc}")
        return
    if config.host and not is_loopback(config.host):
        log.warning(
            "target %s is not loopback: at most %s sessions", config.host, config.max_sessions
        )
    try:
        target.start(config)
    except Exception as exc:  # the simulator could not start: say why, in one line
        _fail(f"could not start the embedded simulator: {exc}")
        return
    # The normalised URL (no trailing slash: `//v1/...` would 404), or the simulator's.
    environment.host = target.url


def _worker_ignores_sigint() -> None:
    log.info("worker: SIGINT ignored, the master ends the run (SIGTERM stops this worker now)")


# --- worker: messages in, deltas out --------------------------------------------------------


def _on_setup(environment: Environment, msg: Any, **_: Any) -> None:
    load_side().setup(msg.data)
    if _roles.shipper is None:
        _roles.shipper = gevent.spawn(_ship_loop, environment)


def _on_step(environment: Environment, msg: Any, **_: Any) -> None:
    load_side().switch_step(int(msg.data["index"]))


def _on_drain(environment: Environment, msg: Any, **_: Any) -> None:
    load_side().request_drain()


def _ship(environment: Environment, *, drained: bool) -> None:
    environment.runner.send_message(MSG_DELTA, load_side().report(drained=drained))  # type: ignore[union-attr]


def _ship_loop(environment: Environment) -> None:
    load = load_side()
    while True:
        gevent.sleep(SHIP_INTERVAL)
        _ship(environment, drained=load.finish())


@events.spawning_complete.add_listener
def _on_spawning_complete(**_: Any) -> None:
    # Thousands of users are thousands of long-lived objects (greenlets, clients): a
    # full garbage collection walks them all, holding the event loop for 100 ms and
    # more, and every poll due meanwhile leaves late.  Once a step's users exist,
    # move them out of the collector's sight; what journeys allocate stays collected.
    # No gc.collect() first: it is itself the full walk, holding the loop ~50 ms while
    # the earlier steps' users poll (the rare garbage frozen with them stays small).
    if _roles.load is not None:
        gc.freeze()


# --- the run's start and end --------------------------------------------------------------------


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    c = _roles.coordinator
    if c is None:
        return
    c.begin_run()
    c.enter_step(0, c.config.ladder.levels[0])


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        load = _roles.load
        if load is not None:
            # Users are stopped: ship what is left, and say so.
            load.request_drain()
            if load.orphans.open:
                load.resolve_orphans()
            _ship(environment, drained=True)
        return
    c = _roles.coordinator
    if c is None or c.run is None or c.state.finalised:
        return
    c.begin_drain()
    # In a greenlet of its own: test_stop may run in one of the runner's greenlets
    # (the heartbeat's, when the last worker went missing), which Locust kills 0.5 s
    # into quitting; the clean-up and the results must not die with it.
    c.finaliser = gevent.spawn(_drain_and_finalise, c)
    c.finaliser.join()


def _drain_and_finalise(c: Coordinator) -> None:
    c.wait_drained()  # workers drain on their own schedule; a local load side at once
    c.finalise("stopped")


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    c = _roles.coordinator
    if c is None:
        return
    try:
        if c.finaliser is not None:
            c.finaliser.join(timeout=c.config.drain_timeout + 45)
        if c.state.interrupted and c.run is not None and not c.state.finished:
            c.wait_for_interrupted_run()
        if c.run is not None and not c.state.finalised:
            c.finalise("quit")
    finally:
        c.target.stop()


__all__ = ["add_options", "coordinator", "load_side", "run_journey"]
