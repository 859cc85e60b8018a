"""The load side of a run: journeys, their recorder, the session quota, and the reaper.

It runs in every process that runs users: each worker, or the one local process.
It knows nothing of steps' timing or of other processes: the coordinator tells it
which step is in force and when to drain, and reads (or is shipped) what it recorded.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.queue

from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.core.polling import Adaptive
from bench.measure import cleanup
from bench.measure.dispatcher import Dispatcher
from bench.measure.driver import ACCEPTED, REFUSED, Journey, JourneySettings
from bench.measure.harness_config import API_KEY_ENV
from bench.measure.journey_events import fire_journey_events, journey_line
from bench.measure.load_transport import LocustTransport
from bench.measure.monitor import monitor_loop
from bench.measure.target import REMOTE, api_key_for
from bench.measure.tls import Tls
from bench.measure.transport import HttpxTransport
from bench.record.recorder import Recorder

log = logging.getLogger("bench")

REAP_INTERVAL = 0.5  # seconds between passes ending the sessions of abandoned journeys
REAP_BUDGET = 5.0  # seconds one reaper round may spend (it runs in a greenlet of its own)

# Outcomes after which the request can have no session to end.
_NO_SESSION_OUTCOMES = frozenset(
    {
        Outcome.FAILED,
        Outcome.CANCELLED,
        Outcome.COMPLETED_BEFORE_READY,
        Outcome.CREATE_ERROR,
        Outcome.CREATE_REJECTED,
    }
)


class LoadSide:
    """Per-process journey state.  Only gevent greenlets touch it, so no locks are needed."""

    def __init__(self, environment: Any, node_id: str = "local") -> None:
        self.environment = environment
        self.node_id = node_id  # who ran a journey, in the journey log
        self.recorder = Recorder()
        self.rng = random.Random()
        self.orphans = cleanup.Orphans()
        self.journey_lines: list[bytes] = []
        self.api_key = ""
        self.step_index = 0
        self.step_started = time.monotonic()
        self.settle = 0.0
        self.journey_log = False
        self.poll_interval = 0.25
        self.drain_timeout = 0.0
        self.quota: int | None = None
        # Creates that count against --max-sessions: in flight, accepted, or whose answer
        # was lost (they may have made a session).  Definite refusals give theirs back.
        self.reserved = 0
        self.refused: str | None = None  # why the provider refuses every create (401/402/403)
        self.tls = Tls()
        self.cleaner: cleanup.Cleaner | None = None
        # The open model's dispatcher (None: the closed model).
        self.dispatcher: Dispatcher | None = None
        self._monitor: Any = None
        # The connect check after ready (--cdp-check), bound to the run's settings once
        # at set-up; None: no check.
        self.connect_check: Any = None
        self.inflight = 0
        self._busy_mark = time.monotonic()
        self.drain_requested = False
        self.capped = False
        # Requests whose journey ended without seeing their session ended (protocol or
        # poll error, timeout, failed release): the reaper ends their sessions mid-run.
        self.abandoned: set[str] = set()
        self._reaper: Any = None
        self._settings: JourneySettings | None = None
        # Poll-schedule hook: learns from this process's journeys where polls are worth
        # sending (bench.core.polling); a new run starts from the fixed interval.
        self.planner = Adaptive(self.poll_interval)

    # --- set-up and steps ---------------------------------------------------------------

    def setup(self, setup: dict[str, Any]) -> None:
        """A new run: what the coordinator's setup message says (see Coordinator.setup)."""
        self.recorder = Recorder()
        self.journey_lines = []
        self.quota = setup["quota"]
        self.reserved = 0
        self.refused = None
        self.capped = False
        self.orphans = cleanup.Orphans()
        self.tls = Tls.from_wire(setup.get("tls"))
        self.connect_check = self._connect_check(setup.get("cdp"))
        if self.cleaner is not None:
            self.cleaner.client.close()  # type: ignore[attr-defined]
            self.cleaner = None
        self.drain_requested = False
        self.settle = float(setup["settle"])
        self.journey_log = bool(setup["journey_log"])
        self.poll_interval = float(setup["poll_interval"])
        self.drain_timeout = float(setup["ready_timeout"]) + float(setup["hold"]) + 10.0
        self.api_key = api_key_for(setup["kind"])
        if setup["kind"] == REMOTE and not self.api_key:
            log.error("%s is not set on this worker: every call will be refused", API_KEY_ENV)
        self.planner = Adaptive(self.poll_interval)
        self._settings = JourneySettings(
            poll_interval=self.poll_interval,
            ready_timeout=float(setup["ready_timeout"]),
            hold=float(setup["hold"]),
            max_poll_errors=int(setup["max_poll_errors"]),
            create_body=bytes(setup["create_body"]),
        )
        self.switch_step(0)
        self.abandoned = set()
        # The reaper's client now, before any step: building it (an SSL context from
        # the system's CA bundle, httpx's first import) holds the event loop for tens
        # of milliseconds, which at its first pass mid-step every poll due would feel.
        self._cleaner()
        if self._reaper is None:
            self._reaper = gevent.spawn(self._reap_loop)
        if self._monitor is None:
            self._monitor = gevent.spawn(
                monitor_loop,
                lambda: self._settings is not None and not self.drain_requested,
                self._part_now,
            )
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
        model, share = setup.get("open"), setup.get("share")
        if model is not None:
            self.dispatcher = Dispatcher(
                self, rates=[float(r) for r in model["rates"]], arrivals=str(model["arrivals"]),
                share=(int(share[0]), int(share[1])) if share else None, rng=self.rng,
                may_ask=self._may_ask, on_dropped=self._dropped,
            )  # fmt: skip

    def switch_step(self, index: int) -> None:
        self.account_busy()
        self.step_index = index
        self.step_started = time.monotonic()
        if self.dispatcher is not None:
            self.dispatcher.step_changed()

    def request_drain(self) -> None:
        """No new journeys from now on; time spent draining is charged to no step."""
        if not self.drain_requested:
            self.account_busy()
            self.drain_requested = True
            if self.dispatcher is not None:
                self.dispatcher.drain()

    def account_busy(self) -> None:
        # Integral of in-flight journeys over time, charged to the step in force.  The
        # drain after the last step is not part of any step: charging it to the last
        # one would report more concurrency than was ever asked for.
        now = time.monotonic()
        if not self.drain_requested:
            self.recorder.add_busy(self.step_index, self.inflight * (now - self._busy_mark))
        self._busy_mark = now

    @property
    def drained(self) -> bool:
        """Told to drain, and no journey is in flight any more."""
        return self.drain_requested and self.inflight == 0

    # --- journeys -------------------------------------------------------------------------

    def run_journey(self, user: Any) -> None:
        """One iteration of a user: one journey, from create to release.

        Closed model: at once, back to back.  Open model: when the dispatcher hands this
        (idle) user an arrival; the journey belongs to the arrival's step, and how late
        it started against the schedule is recorded as `start_lag`.
        """
        settings = self._settings
        if settings is None or self.drain_requested or self.refused is not None:
            gevent.sleep(self.poll_interval)
            return
        if self.quota is not None and self.reserved >= self.quota:
            self._cap_reached()
            gevent.sleep(self.poll_interval)
            return
        scheduled: float | None = None
        if self.dispatcher is not None:
            arrival = self.dispatcher.take()
            if arrival is None:
                return  # the drain let us go
            scheduled, step, warmup = arrival
        else:
            step = self.step_index
            warmup = time.monotonic() - self.step_started < self.settle
        self.reserved += 1
        self.account_busy()
        self.inflight += 1
        self.recorder.journey_started(step, warmup)
        orphans = self.orphans
        holder: dict[str, str] = {}

        def on_request(request_id: str) -> None:
            holder["request"] = request_id
            orphans.request(request_id)

        plan = self.planner.plan(self.rng)
        journey = Journey(
            transport=self._transport(user),
            settings=settings,
            clock=time.perf_counter,
            sleep=gevent.sleep,
            rng=self.rng,
            on_request=on_request,
            on_session=lambda sid: orphans.session(holder["request"], sid),
            on_released=lambda sid: orphans.closed(holder["request"]),
            connect_check=self.connect_check,
            plan=plan,
        )
        lag = None if scheduled is None else max(0.0, time.monotonic() - scheduled)
        result: JourneyResult | None = None
        try:
            result = journey.run()
        finally:
            # A user killed mid-journey (stop timeout, Ctrl-C) lands here with
            # GreenletExit: the journey still gets exactly one outcome.
            if result is None:
                result = journey.abort()
            if lag is not None:
                result.samples["start_lag"] = [lag * 1e6]
            self._journey_done(step, warmup, result, journey)
            self.planner.learn(result, plan)  # after the accounting, which must not miss
        if self.dispatcher is None:
            # Closed model only: an open model's arrivals keep their own schedule.
            self._pause(journey.pause_s)

    def _transport(self, user: Any) -> LocustTransport:
        """The user's own connection to the target, made at its first journey and kept."""
        transport = getattr(user, "transport", None)
        if transport is None:
            transport = user.transport = LocustTransport(
                self.environment.host, self.api_key, self.environment.events.request.fire,
                tls=self.tls, connection_timeout=float(user.connection_timeout),
                network_timeout=float(user.network_timeout),
            )  # fmt: skip
        return transport

    def _connect_check(self, cdp: dict[str, Any] | None) -> Any:
        """The check after ready (--cdp-check), bound to the run's settings; None: no check."""
        if cdp is None:
            return None
        from bench.measure.cdp_client import connect_check

        navigate, timeout, context = cdp.get("navigate"), float(cdp["timeout"]), None
        if not self.tls.verify or self.tls.ca_pem:
            context = self.tls.context()  # the run's --insecure / --ca-bundle, as for the API

        def check(cdp_url: str) -> Any:
            return connect_check(
                cdp_url, navigate_url=navigate, timeout=timeout, clock=time.perf_counter,
                ssl_context=context,
            )  # fmt: skip

        return check

    def _pause(self, seconds: float) -> None:
        """Wait as the target asked before the next create; the drain cuts it short.

        Taken after the journey ended: a user waiting out a Retry-After has no journey
        in flight, so it is neither charged to the step's concurrency nor cut as aborted.
        """
        end = time.monotonic() + seconds
        while not self.drain_requested and (left := end - time.monotonic()) > 0:
            gevent.sleep(min(left, 0.25))

    def _journey_done(self, step: int, warmup: bool, result: JourneyResult, journey: Any) -> None:
        self.account_busy()
        self.inflight -= 1
        self.recorder.journey_finished(step, warmup, result)
        if journey.fate == REFUSED:
            self.reserved -= 1  # a definite refusal made no session: it costs no quota
        elif journey.fate != ACCEPTED and journey.request_id is None:
            # The answer was lost (network, gateway, unreadable): a session may exist
            # that only the tag sweep can find.
            self.orphans.lost_creates += 1
        if journey.refusal is not None and self.refused is None:
            self.refused = journey.refusal
            log.error("%s: no more sessions will be asked for", journey.refusal)
        request_id = journey.request_id
        if request_id and result.outcome in _NO_SESSION_OUTCOMES:
            self.orphans.closed(request_id)
        elif request_id in self.orphans.open:
            self.abandoned.add(request_id)
        fire_journey_events(self.environment, result)
        if self.journey_log:
            self.journey_lines.append(journey_line(step, warmup, result, journey, self.node_id))

    def _cap_reached(self) -> None:
        if self.capped:
            return
        self.capped = True
        log.info("--max-sessions reached (%s): no more sessions will be created", self.quota)

    # --- what it recorded -------------------------------------------------------------------

    def report(self, *, drained: bool = False) -> dict[str, Any]:
        """What was recorded since the last report (a worker ships it to the master)."""
        self.account_busy()
        data = {
            "delta": self.recorder.take_delta(),
            "journeys": self.journey_lines,
            "drained": drained,
            "capped": self.capped,
            "refused": self.refused,
            # What this process could not see ended: the master's leak count needs it.
            "unresolved": list(self.orphans.open.items()) if drained else [],
            "lost": sorted(self.orphans.lost) if drained else [],
            "lost_creates": self.orphans.lost_creates if drained else 0,
        }
        self.journey_lines = []
        return data

    def finish(self) -> bool:
        """When drained, end what journeys left behind; whether everything is accounted for."""
        if not self.drained:
            return False
        if self.orphans.open:
            self.resolve_orphans()
        return not self.orphans.open

    # --- the open model: arrivals on schedule ---------------------------------------------------

    def _may_ask(self) -> bool:
        return self.refused is None and (self.quota is None or self.reserved < self.quota)

    def _dropped(self, step: int, warmup: bool) -> None:
        """An arrival that found --max-in-flight journeys in flight: counted, not queued."""
        self.recorder.journey_started(step, warmup)
        result = JourneyResult(Outcome.DROPPED)
        self.recorder.journey_finished(step, warmup, result)
        fire_journey_events(self.environment, result)
        if self.journey_log:
            self.journey_lines.append(journey_line(step, warmup, result, None, self.node_id))

    # --- the load generator watching itself ----------------------------------------------------

    def _part_now(self, now: float) -> Any:
        warmup = now - self.step_started < self.settle
        return self.recorder.step(self.step_index).part(warmup)

    # --- sessions journeys left behind ----------------------------------------------------------

    def _reap_loop(self) -> None:
        while True:
            gevent.sleep(REAP_INTERVAL)
            try:
                self.reap()
            except Exception:  # the reaper must never die; the end-of-run clean-up remains
                log.exception("ending abandoned sessions failed; retrying later")

    def reap(self) -> int:
        """One round over abandoned requests: end the sessions they got, forget those without.

        Without it, every session a journey gave up on (a protocol error, say) stays alive
        until the run ends: billed, holding a browser slot, and on a long run dying of its
        idle timeout before the end-of-run clean-up could end it.  A round takes every
        abandoned request, oldest attempt first and several at a time, over one kept-alive
        client, for up to REAP_BUDGET seconds.
        """
        self.abandoned &= set(self.orphans.open)
        cleaner = self._cleaner()
        if not self.abandoned or cleaner is None:
            return 0
        ended = cleaner.resolve(
            self.orphans, deadline=time.monotonic() + REAP_BUDGET,
            poll_interval=self.poll_interval, only=set(self.abandoned),
        )  # fmt: skip
        self.abandoned &= set(self.orphans.open)
        return ended

    def resolve_orphans(self) -> int:
        """End the sessions of journeys that were cut short (bounded by the drain timeout)."""
        cleaner = self._cleaner()
        if not self.orphans.open or cleaner is None:
            return 0
        return cleaner.resolve(
            self.orphans, deadline=time.monotonic() + self.drain_timeout,
            poll_interval=self.poll_interval,
        )  # fmt: skip

    def _cleaner(self) -> cleanup.Cleaner | None:
        """The clean-up's client of the target, kept alive for the run."""
        host = self.environment.host
        if not host:
            return None
        if self.cleaner is None:
            client = HttpxTransport(host, self.api_key, self.tls)
            self.cleaner = gevent_cleaner(client, self.rng, self.poll_interval)
        return self.cleaner


def gevent_cleaner(
    client: HttpxTransport, rng: random.Random, poll_interval: float
) -> cleanup.Cleaner:
    """A Cleaner whose passes run `cleanup.PARALLEL` calls at a time in greenlets.

    Its retries back off from the run's poll interval (within 10 ms .. 1 s), as the
    journeys' own do: a provider polled every 0.25 s is retried on that time scale.
    """

    def parallel(tasks: Any) -> None:
        pool = gevent.pool.Pool(cleanup.PARALLEL)
        for task in tasks:
            pool.spawn(task)
        pool.join()

    return cleanup.Cleaner(
        client, clock=time.monotonic, sleep=gevent.sleep, rng=rng, parallel=parallel,
        backoff_base_s=min(1.0, max(0.01, poll_interval)),
    )  # fmt: skip


__all__ = ["REAP_INTERVAL", "LoadSide", "gevent_cleaner"]
