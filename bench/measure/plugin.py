"""Locust wiring: options, run lifecycle, steps, worker->master shipping, results, exit code.

Roles: a *local* runner (one process) does everything; in distributed mode the
*master* owns the ladder, the step boundaries, the merged recorder and the
results file, and each *worker* runs journeys, records into its own recorder and
ships deltas with custom messages.  The run ends in three moves so that nothing
measured is lost: the ladder ends -> users ramp to 0 with a graceful stop timeout
(journeys finish) -> every worker reports "drained" with its final delta -> the
shape returns None and the master finalises (clean-up sweep, results, exit code).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING, LocalRunner, MasterRunner, WorkerRunner

from bench.core import exitcodes
from bench.core.journey import TIMED_PHASES, JourneyResult
from bench.core.outcomes import Outcome
from bench.core.text import one_line
from bench.measure import cleanup
from bench.measure.driver import Journey, JourneySettings, create_body
from bench.measure.harness_config import (
    API_KEY_ENV,
    ConfigError,
    HarnessConfig,
    from_options,
    is_loopback,
)
from bench.measure.option_table import add_options
from bench.measure.transport import HttpxTransport, LocustTransport
from bench.record.recorder import Recorder
from bench.record.runinfo import environment_metadata, iso, new_run_id
from bench.record.timeline import Timeline, Totals, progress_line

log = logging.getLogger("bench")
# httpx logs every clean-up call at INFO; those belong in the results, not the console.
logging.getLogger("httpx").setLevel(logging.WARNING)

# The embedded simulator's key: a local, non-secret value, so that a real key in
# the environment is never sent to it.
SIMULATOR_KEY = "sim-local-key"
SCENARIO_VERSION = 1
SHIP_INTERVAL = 2.0  # seconds between worker deltas
REAP_INTERVAL = 0.5  # seconds between passes ending the sessions of abandoned journeys
TIMELINE_INTERVAL = 1.0  # seconds between timeline samples (master / local)

MSG_SETUP = "bench_setup"  # master -> worker: run id, target kind, session quota
MSG_STEP = "bench_step"  # master -> worker: a new ladder step began
MSG_DRAIN = "bench_drain"  # master -> worker: the ladder is over
MSG_DELTA = "bench_delta"  # worker -> master: recorder delta (+ drained / capped flags)


@dataclass
class StepMark:
    index: int
    target: int
    started: float  # monotonic
    ended: float | None = None


@dataclass
class Run:
    """One test run (a UI session can hold several)."""

    id: str
    started_mono: float
    started_wall: float
    steps: list[StepMark] = field(default_factory=list)
    draining_since: float | None = None
    drained_workers: set[str] = field(default_factory=set)
    capped_workers: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)  # master: the workers the run began with
    lost: list[str] | None = None  # master: fixed when finalising, so every use agrees
    # master: per worker, per (step, warm-up), journeys shipped as started minus outcomes
    # shipped: what a lost worker still had in flight
    open_journeys: dict[str, Counter[tuple[int, bool]]] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=lambda: Timeline(TIMELINE_INTERVAL))
    finalised: bool = False
    finished: bool = False  # results written (a second signal must not overwrite them)

    @property
    def tag(self) -> str:
        return f"bench-run-{self.id}"


class Harness:
    """Per-process state.  Only gevent greenlets touch it, so no locks are needed."""

    def __init__(self, environment: Environment, config: HarnessConfig) -> None:
        self.environment = environment
        self.config = config
        self.recorder = Recorder()
        self.run: Run | None = None
        self.simulator: Any = None
        self.target_kind = "remote" if config.host else "simulator"
        self.api_key = SIMULATOR_KEY
        self.rng = random.Random()
        self.orphans = cleanup.Orphans()
        # master: requests its workers could not see ended (request_id -> session_id)
        self.remote_orphans: dict[str, str | None] = {}
        self.journey_lines: list[bytes] = []
        self.cleanup_report: dict[str, Any] = {}
        # worker/local journey state
        self.step_index = 0
        self.step_started = time.monotonic()
        self.quota: int | None = config.max_sessions
        self.created = 0
        self.inflight = 0
        self._busy_mark = time.monotonic()
        self.drain_requested = False
        self.capped = False
        self._shipper: Any = None
        # Requests whose journey ended without seeing their session ended (protocol or
        # poll error, timeout, failed release): the reaper ends their sessions mid-run.
        self.abandoned: set[str] = set()
        self._reaper: Any = None
        # Set by the first SIGINT/SIGTERM of a run; a second one stops at once.
        self.interrupted = False
        self.stop_timeout = 0.0  # Locust's, saved while an interrupt sets it to 0
        self._interrupter: Any = None  # the greenlet finishing an interrupted run
        self._sampler: Any = None
        self.finaliser: Any = None  # the greenlet draining and finalising (test_stop)
        self._next_run_id: str | None = getattr(environment.parsed_options, "run_id", None) or None
        self._settings: JourneySettings | None = None
        self.settle = config.ladder.settle
        self.journey_log = config.journey_log
        self.poll_interval = config.poll_interval
        self.drain_timeout = config.drain_timeout

    # --- roles ----------------------------------------------------------------------

    @property
    def is_master(self) -> bool:
        return isinstance(self.environment.runner, MasterRunner)

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment.runner, WorkerRunner)

    @property
    def runs_users(self) -> bool:
        return not self.is_master

    # --- target -----------------------------------------------------------------------

    def start_target(self) -> None:
        """Start the embedded simulator when no host was given (master or local only)."""
        if self.config.host:
            self.api_key = os.environ.get(API_KEY_ENV, "")
            return
        from bench.simulator.process import SimulatorProcess

        self.simulator = SimulatorProcess(
            self.config.simulator_profile,
            time_scale=self.config.simulator_time_scale,
            truth=True,
            api_key=SIMULATOR_KEY,
        ).start()
        self.environment.host = self.simulator.url
        log.info("embedded simulator (%s) at %s", self.config.simulator_profile, self.simulator.url)

    def stop_target(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None

    # --- run lifecycle (master / local) ------------------------------------------------

    def begin_run(self) -> None:
        if self.simulator is not None and not self.environment.host:
            # The web UI's form sends its host field as is: an emptied field must not
            # leave the run without the embedded simulator it was started with.
            self.environment.host = self.simulator.url
        if self.interrupted:
            # A web-UI process outlives an interrupted run: the next run starts afresh.
            self.interrupted = False
            self.environment.stop_timeout = self.stop_timeout
        options = self.environment.parsed_options
        if options is not None:
            try:
                # Web-UI edits arrive in parsed_options at each start; the target stays.
                self.config = replace(from_options(options), host=self.config.host)
            except ConfigError as exc:
                log.error("Error: %s", exc)
        now = time.monotonic()
        # --run-id names the first run only: a web-UI restart is a new run with a new id.
        run_id, self._next_run_id = self._next_run_id or new_run_id(), None
        self.run = Run(run_id, now, time.time())
        self.recorder = Recorder()
        self.journey_lines = []
        self.cleanup_report = {}
        self.remote_orphans = {}
        setup = self.setup_message(self.run.id)
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_loop)
        if self.is_master:
            workers = sorted(self.environment.runner.clients.keys())  # type: ignore[union-attr]
            self.run.workers = set(workers)
            quotas = _split(self.config.max_sessions, len(workers))
            for client_id, quota in zip(workers, quotas, strict=True):
                self.environment.runner.send_message(  # type: ignore[union-attr]
                    MSG_SETUP, {**setup, "quota": quota}, client_id=client_id
                )
        else:
            self.setup_worker({**setup, "quota": self.config.max_sessions})

    def setup_message(self, run_id: str) -> dict[str, Any]:
        """What a worker needs to run journeys exactly as the master was told to."""
        config = self.config
        return {
            "run_id": run_id,
            "kind": self.target_kind,
            "poll_interval": config.poll_interval,
            "ready_timeout": config.ready_timeout,
            "hold": config.hold,
            "max_poll_errors": config.max_poll_errors,
            "settle": config.ladder.settle,
            "journey_log": config.journey_log,
            "create_body": create_body(config.session_config, f"bench-run-{run_id}"),
        }

    def enter_step(self, index: int, target: int) -> None:
        """Called by the shape when a ladder step begins."""
        assert self.run is not None
        now = time.monotonic()
        if self.run.steps:
            self.run.steps[-1].ended = now
        self.run.steps.append(StepMark(index, target, now))
        log.info("ladder step %d: %d concurrent journeys", index + 1, target)
        if self.is_master:
            self.environment.runner.send_message(MSG_STEP, {"index": index})  # type: ignore[union-attr]
        else:
            self.switch_step(index)

    def begin_drain(self) -> None:
        assert self.run is not None
        if self.run.draining_since is not None:
            return
        now = time.monotonic()
        self.run.draining_since = now
        if self.run.steps and self.run.steps[-1].ended is None:
            self.run.steps[-1].ended = now
        log.info(
            "ladder done: draining in-flight journeys (up to %.0f s)", self.config.drain_timeout
        )
        if self.is_master:
            self.environment.runner.send_message(MSG_DRAIN, {})  # type: ignore[union-attr]
        else:
            self.request_drain()

    def request_drain(self) -> None:
        """No new journeys from now on; time spent draining is charged to no step."""
        if not self.drain_requested:
            self._account_busy()
            self.drain_requested = True

    def drained(self) -> bool:
        """Whether the run may end: every worker drained, or the drain deadline passed."""
        run = self.run
        if run is None or run.draining_since is None:
            return False
        if time.monotonic() - run.draining_since > self.config.drain_timeout + 15:
            log.warning("drain timed out; finishing with what was shipped")
            return True
        if self.is_master:
            return self.live_workers() <= run.drained_workers
        if self.inflight:
            return False
        if self.orphans.open:
            self.resolve_orphans()
        return True

    def should_stop_ladder(self) -> bool:
        """The session cap was reached everywhere: end the ladder early."""
        if self.run is None:
            return False
        if self.is_master:
            expected = self.live_workers()
            return bool(expected) and expected <= self.run.capped_workers
        return self.capped

    def live_workers(self) -> set[str]:
        """Master: connected workers Locust has not marked missing (a lost one never drains)."""
        clients = self.environment.runner.clients  # type: ignore[union-attr]
        return {c.id for c in clients.values() if c.state != STATE_MISSING}

    def lost_workers(self) -> list[str]:
        """Master: workers the run began with that vanished before they drained.

        A worker that shipped its last delta (drained) and then stopped or quit, as every
        worker does at the end of a web-UI run, is done, not lost.
        """
        run = self.run
        if not self.is_master or run is None:
            return []
        if run.lost is not None:
            return run.lost
        return sorted(run.workers - self.live_workers() - run.drained_workers)

    # --- master / local: timeline and progress ------------------------------------------

    def _sample_loop(self) -> None:
        # Bounded by the process: it samples the run in force and idles between runs.
        last_progress = time.monotonic()
        while True:
            run = self.run
            if run is not None and not run.finalised:
                if self.is_master:
                    self.admit_late_workers(run)
                self.sample(run)
                interval = self.config.progress_interval
                now = time.monotonic()
                if interval and now - last_progress >= interval:
                    last_progress = now
                    log.info("%s", self.progress(run))
            gevent.sleep(TIMELINE_INTERVAL)

    def admit_late_workers(self, run: Run) -> None:
        """Master: set up a worker that connected after the run began.

        Locust hands it users at once; without the run's setup they would idle and the
        drain would wait for a worker that never ships.  --max-sessions was split among
        the workers present at the start, so a late one gets no session quota then.
        """
        late = sorted(self.live_workers() - run.workers)
        if not late or run.draining_since is not None:
            return
        runner = self.environment.runner
        quota = None if self.config.max_sessions is None else 0
        setup = {**self.setup_message(run.id), "quota": quota}
        for client_id in late:
            runner.send_message(MSG_SETUP, setup, client_id=client_id)  # type: ignore[union-attr]
            if run.steps:
                runner.send_message(  # type: ignore[union-attr]
                    MSG_STEP, {"index": run.steps[-1].index}, client_id=client_id
                )
            run.workers.add(client_id)
        log.warning(
            "worker(s) %s joined mid-run and were set up%s",
            ", ".join(late),
            "" if quota is None else " with no session quota (--max-sessions was split at start)",
        )

    def _in_flight(self, run: Run) -> int:
        if not self.is_master:
            return self.inflight
        # Shipped as started minus shipped outcomes: each worker's in-flight count at its
        # last delta. A lost worker's no longer counts.
        live = self.live_workers()
        return sum(sum(run.open_journeys.get(client, Counter()).values()) for client in live)

    def _totals(self) -> Totals:
        journeys, outcomes = self.recorder.totals()
        return Totals.of(journeys, outcomes)

    def sample(self, run: Run) -> None:
        step = run.steps[-1] if run.steps and run.draining_since is None else None
        runner = self.environment.runner
        run.timeline.sample(
            time.monotonic() - run.started_mono,
            step=step.index if step else None,
            target=step.target if step else 0,
            users=runner.user_count if runner is not None else 0,
            in_flight=self._in_flight(run),
            totals=self._totals(),
        )

    def progress(self, run: Run) -> str:
        ladder = self.config.ladder
        step = run.steps[-1] if run.steps else None
        return progress_line(
            step=step.index if step else None,
            steps=len(ladder.levels),
            target=step.target if step else 0,
            elapsed_s=time.monotonic() - run.started_mono,
            ladder_s=ladder.step_time * len(ladder.levels),
            in_flight=self._in_flight(run),
            totals=self._totals(),
            draining=run.draining_since is not None,
        )

    # --- worker / local: journeys ------------------------------------------------------

    def setup_worker(self, setup: dict[str, Any]) -> None:
        self.recorder = Recorder()
        self.journey_lines = []
        self.quota = setup["quota"]
        self.created = 0
        self.capped = False
        self.drain_requested = False
        self.target_kind = setup["kind"]
        self.settle = float(setup["settle"])
        self.journey_log = bool(setup["journey_log"])
        self.poll_interval = float(setup["poll_interval"])
        self.drain_timeout = float(setup["ready_timeout"]) + float(setup["hold"]) + 10.0
        remote = self.target_kind == "remote"
        self.api_key = os.environ.get(API_KEY_ENV, "") if remote else SIMULATOR_KEY
        if remote and not self.api_key:
            log.error("%s is not set on this worker: every call will be refused", API_KEY_ENV)
        self._settings = JourneySettings(
            poll_interval=self.poll_interval,
            ready_timeout=float(setup["ready_timeout"]),
            hold=float(setup["hold"]),
            max_poll_errors=int(setup["max_poll_errors"]),
            create_body=bytes(setup["create_body"]),
        )
        self.switch_step(0)
        self.abandoned = set()
        if self.is_worker and self._shipper is None:
            self._shipper = gevent.spawn(self._ship_loop)
        if self._reaper is None:
            self._reaper = gevent.spawn(self._reap_loop)

    def switch_step(self, index: int) -> None:
        self._account_busy()
        self.step_index = index
        self.step_started = time.monotonic()

    def _account_busy(self) -> None:
        # Integral of in-flight journeys over time, charged to the step in force.  The
        # drain after the last step is not part of any step: charging it to the last
        # one would report more concurrency than was ever asked for.
        now = time.monotonic()
        if not self.drain_requested:
            self.recorder.add_busy(self.step_index, self.inflight * (now - self._busy_mark))
        self._busy_mark = now

    def run_journey(self, user: Any) -> None:
        """One iteration of a user: one journey, from create to release."""
        settings = self._settings
        if settings is None or self.drain_requested:
            gevent.sleep(self.poll_interval)
            return
        if self.quota is not None and self.created >= self.quota:
            self._cap_reached()
            gevent.sleep(self.poll_interval)
            return
        self.created += 1
        step = self.step_index
        warmup = time.monotonic() - self.step_started < self.settle
        self._account_busy()
        self.inflight += 1
        self.recorder.journey_started(step, warmup)
        orphans = self.orphans
        holder: dict[str, str] = {}

        def on_request(request_id: str) -> None:
            holder["request"] = request_id
            orphans.request(request_id)

        journey = Journey(
            transport=LocustTransport(user.client, self.api_key),
            settings=settings,
            clock=time.perf_counter,
            sleep=gevent.sleep,
            rng=self.rng,
            on_request=on_request,
            on_session=lambda sid: orphans.session(holder["request"], sid),
            on_released=lambda sid: orphans.closed(holder["request"]),
        )
        result: JourneyResult | None = None
        try:
            result = journey.run()
        finally:
            # A user killed mid-journey (stop timeout, Ctrl-C) lands here with
            # GreenletExit: the journey still gets exactly one outcome.
            if result is None:
                result = journey.abort()
            self._journey_done(step, warmup, result, journey)

    def _journey_done(self, step: int, warmup: bool, result: JourneyResult, journey: Any) -> None:
        self._account_busy()
        self.inflight -= 1
        self.recorder.journey_finished(step, warmup, result)
        request_id = journey.request_id
        if request_id and result.outcome in _NO_SESSION_OUTCOMES:
            self.orphans.closed(request_id)
        elif request_id in self.orphans.open:
            self.abandoned.add(request_id)
        _fire_phase_events(self.environment, result)
        if self.journey_log:
            self.journey_lines.append(
                _journey_line(step, warmup, result, journey, self.node_id)
            )

    @cached_property
    def node_id(self) -> str:
        """Who ran a journey, in the journey log (fixed for the life of the process)."""
        if not self.is_worker:
            return "local"
        return str(getattr(self.environment.runner, "client_id", "worker"))

    def _cap_reached(self) -> None:
        if self.capped:
            return
        self.capped = True
        log.info("--max-sessions reached (%s): no more sessions will be created", self.quota)

    # --- worker: shipping ----------------------------------------------------------------

    def _ship_loop(self) -> None:
        while True:
            gevent.sleep(SHIP_INTERVAL)
            drained = self.drain_requested and self.inflight == 0
            if drained and self.orphans.open:
                self.resolve_orphans()
            self.ship(drained=drained and not self.orphans.open)

    def ship(self, *, drained: bool = False) -> None:
        self._account_busy()
        runner = self.environment.runner
        data = {
            "delta": self.recorder.take_delta(),
            "journeys": self.journey_lines,
            "drained": drained,
            "capped": self.capped,
            # What this worker could not see ended: the master's leak count needs it.
            "unresolved": list(self.orphans.open.items()) if drained else [],
        }
        self.journey_lines = []
        runner.send_message(MSG_DELTA, data)  # type: ignore[union-attr]

    def _reap_loop(self) -> None:
        while True:
            gevent.sleep(REAP_INTERVAL)
            try:
                self.reap()
            except Exception:  # the reaper must never die; the end-of-run clean-up remains
                log.exception("ending abandoned sessions failed; retrying later")

    def reap(self) -> int:
        """One pass over abandoned requests: end the sessions they got, forget those without.

        Without it, every session a journey gave up on (a protocol error, say) stays alive
        until the run ends: billed, holding a browser slot, and on a long run dying of its
        idle timeout before the end-of-run clean-up could end it.
        """
        batch = {rid: sid for rid, sid in self.orphans.open.items() if rid in self.abandoned}
        self.abandoned &= set(self.orphans.open)
        if not batch or not self.environment.host:
            return 0
        pending = cleanup.Orphans(dict(batch))
        # Bounded by one poll interval: a request still in flight waits for the next pass.
        ended = self._resolve(pending, self.poll_interval)
        for request_id in batch:
            if request_id not in pending.open:
                self.orphans.closed(request_id)
                self.abandoned.discard(request_id)
        return ended

    def resolve_orphans(self) -> int:
        """End the sessions of journeys that were cut short (bounded by the drain timeout)."""
        if not self.orphans.open or not self.environment.host:
            return 0
        return self._resolve(self.orphans, self.drain_timeout)

    def _resolve(self, orphans: cleanup.Orphans, budget_s: float) -> int:
        """cleanup.resolve on a fresh client of the target, for at most `budget_s`."""
        transport = HttpxTransport(self.environment.host, self.api_key)
        try:
            return cleanup.resolve(
                orphans, transport, deadline=time.monotonic() + budget_s,
                poll_interval=self.poll_interval, clock=time.monotonic, sleep=gevent.sleep,
            )  # fmt: skip
        finally:
            transport.close()

    # --- master: receiving ---------------------------------------------------------------

    def on_delta(self, client_id: str, data: dict[str, Any]) -> None:
        delta = data.get("delta", {})
        self.recorder.merge_wire(delta)
        if self.run is not None:
            balance = self.run.open_journeys.setdefault(client_id, Counter())
            for index, step in delta.items():
                for warmup, name in ((False, "measured"), (True, "warmup")):
                    part = step.get(name, {})
                    done = sum(int(v) for v in part.get("outcomes", {}).values())
                    balance[int(index), warmup] += int(part.get("journeys", 0)) - done
        self.journey_lines.extend(data.get("journeys", []))
        for request_id, session_id in data.get("unresolved", []):
            self.remote_orphans[request_id] = session_id
        if self.run is not None:
            if data.get("drained"):
                self.run.drained_workers.add(client_id)
            if data.get("capped"):
                self.run.capped_workers.add(client_id)

    # --- the end -------------------------------------------------------------------------

    def finalise(self, reason: str) -> None:
        """Clean up, write the results, set the exit code.  Runs once per run."""
        run = self.run
        if run is None or run.finalised:
            return
        run.finalised = True
        run.lost = self.lost_workers()  # fixed now: the exit code, the aborts and the file agree
        if self.interrupted:
            reason = "interrupted"
            # Results first, clean-up second: whatever comes next (a second signal, a
            # SIGKILL), what was measured is on disk; the final write replaces this one.
            self.cleanup_report = self._unswept_report()
            code, why = self._exit_code()
            try:
                self._write(self._document(run, time.monotonic(), code, why, "interrupted"))
            except OSError as exc:  # the clean-up below matters more; the final write retries
                log.error("could not write the interim results: %s", exc)
        if self.runs_users:
            self._account_busy()
            self.resolve_orphans()
        self._abort_lost_journeys(run)
        now = time.monotonic()
        for step in run.steps:
            if step.ended is None:
                step.ended = now
        self.sample(run)  # the last, partial interval
        self.cleanup_report = self._sweep(run)
        code, why = self._exit_code()
        document = self._document(run, now, code, why, reason)
        self._write(document)
        run.finished = True
        if self.config.report:
            self._report()
        self.environment.process_exit_code = code
        log.info("run %s finished: %s (exit code %d)", run.id, why, code)

    def _abort_lost_journeys(self, run: Run) -> None:
        """Journeys a lost worker shipped as started but never finished end as `aborted`.

        They were cut short by the worker's death; without an outcome they would break the
        invariant (outcomes add up to journeys started) for a loss already reported.
        """
        for client_id in self.lost_workers():
            balance = run.open_journeys.get(client_id, Counter())
            for (step, warmup), count in sorted(balance.items()):
                for _ in range(max(count, 0)):
                    self.recorder.journey_finished(step, warmup, JourneyResult(Outcome.ABORTED))
            balance.clear()

    def _sweep(self, run: Run) -> dict[str, Any]:
        """End what is left by tag, and list every session not confirmed ended.

        A session counts as leaked when the sweep still finds it alive, or when the
        harness created it and never saw an end confirmed (it may have died of its
        idle timeout meanwhile: billed all the same), or when a request was still
        unresolved at the end (it may yet become a session).
        """
        report = self._unswept_report()
        unended, pending = report["unended_session_ids"], report["unresolved_request_ids"]
        host = self.environment.host
        alive: list[str] | None = None
        if host:
            transport = HttpxTransport(host, self.api_key)
            try:
                ended, alive = cleanup.sweep(transport, run.tag)
            finally:
                transport.close()
            report["ended_by_sweep"] = ended
        if alive is not None:
            report.update(sweep_ok=True, left_alive=len(alive), left_alive_ids=alive)
        else:
            log.warning("could not list the run's sessions by tag: leaks cannot be ruled out")
        report["leaked"] = len(set(alive or ()) | set(unended)) + len(pending)
        return report

    def _unswept_report(self) -> dict[str, Any]:
        """The clean-up report before (or without) a sweep: what is known not to be ended."""
        unresolved = {**self.remote_orphans, **self.orphans.open}
        unended = sorted({sid for sid in unresolved.values() if sid})
        pending = sorted(rid for rid, sid in unresolved.items() if not sid)
        return {
            "ended_by_sweep": 0,
            "left_alive": 0,
            "left_alive_ids": [],
            "unended_session_ids": unended,
            "unresolved_request_ids": pending,
            "sweep_ok": False,
            "leaked": len(unended) + len(pending),
        }

    def on_signal(self) -> None:
        """SIGINT/SIGTERM (run by gevent in a greenlet of its own).

        Locust cannot be left to it: during a headless shape run (ours) its SIGTERM
        handler is not installed yet, so SIGTERM killed the process with nothing written,
        and SIGINT stopped the users gracefully (up to the stop timeout) with no way to
        say "now".  Here the first signal interrupts the run; the second stops at once.
        """
        run = self.run
        if self.interrupted or run is None or run.finished:
            self.stop_now()
            return
        self._interrupter = gevent.getcurrent()
        self.interrupt()

    def wait_for_interrupted_run(self) -> None:
        """Hold Locust's shutdown (which ends in sys.exit) until the interrupted run is written."""
        greenlet = self._interrupter
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.join(timeout=self.config.drain_timeout + 30)

    def interrupt(self) -> None:
        """First signal: abort journeys now, then finish as usual (bounded clean-up).

        Stopping the users first, with no graceful wait, keeps them from creating
        sessions while the results are written, leaves every journey an outcome (`aborted`
        for those cut) and every cut request in the orphans, which finalise ends within
        the drain timeout.
        """
        self.interrupted = True
        log.warning(
            "interrupted: aborting journeys, writing results and ending sessions (up to "
            "%.0f s); a second signal stops at once",
            self.config.drain_timeout,
        )
        self.stop_timeout = self.environment.stop_timeout or self.config.drain_timeout
        self.environment.stop_timeout = 0  # cut journeys now: their sessions are ended below
        if self.is_master:
            # Not runner.stop(): Locust would then quit the master within 0.5 s and cut
            # off the workers' last deltas.  The ladder's own drain does it instead: the
            # shape ramps to 0 users with a stop timeout of 0 (sent with the spawn
            # message), so workers cut their journeys now, end their sessions, ship and
            # drain; the shape then ends the run and test_stop finalises.
            self.begin_drain()
            return
        runner = self.environment.runner
        if runner is not None:
            runner.stop()  # fires test_stop, which finalises
        if self.run is not None and not self.run.finalised:
            self.finalise("interrupted")

    def stop_now(self) -> None:
        """Second signal: write what was gathered (no network), then exit at once."""
        code = self.environment.process_exit_code or exitcodes.OK
        run = self.run
        try:
            if run is not None and not run.finished:
                # The fresh view of what is not ended, unless a sweep already confirmed
                # the end state (the interim report written first is stale by now).
                swept = bool(self.cleanup_report.get("sweep_ok"))
                if not swept:
                    self.cleanup_report = self._unswept_report()
                code, why = self._exit_code()
                if not swept:
                    why = "stopped by a second signal before the clean-up finished: " + why
                now = time.monotonic()
                self._write(self._document(run, now, code, why, "interrupted twice"))
            log.warning("second signal: stopped at once (exit code %d)", code)
        finally:
            self.stop_target()
            logging.shutdown()
            os._exit(code)

    def _exit_code(self) -> tuple[int, str]:
        journeys, outcomes = self.recorder.totals()
        violations = self.recorder.invariant_violations()
        protocol = outcomes.get(Outcome.PROTOCOL_ERROR.value, 0)
        if journeys and outcomes.get(Outcome.CREATE_ERROR.value, 0) == journeys:
            return exitcodes.TARGET_UNREACHABLE, "target unreachable: no create call was answered"
        if journeys and protocol / journeys > self.config.protocol_error_threshold:
            return (
                exitcodes.PROTOCOL_ERRORS,
                f"{protocol} of {journeys} journeys ended in protocol errors",
            )
        lost = self.lost_workers()
        if lost:
            # Before leaks: a lost worker's unshipped journeys and unended sessions are
            # exactly what nobody can account for, and the leak count may include them.
            return (
                exitcodes.WORKER_LOST,
                f"{len(lost)} worker(s) lost mid-run ({', '.join(lost)}); their unshipped "
                "journeys are missing",
            )
        leaked = self.cleanup_report.get("leaked", 0)
        if leaked:
            alive = self.cleanup_report.get("left_alive", 0)
            return (
                exitcodes.LEAKED_SESSIONS,
                f"{leaked} sessions not confirmed ended ({alive} still alive after the sweep)",
            )
        if violations:
            return exitcodes.INVARIANT_BROKEN, "outcomes do not add up: " + "; ".join(violations)
        if not journeys:
            return exitcodes.NO_JOURNEYS, "no journey ran"
        return exitcodes.OK, "clean run"

    def _document(self, run: Run, now: float, code: int, why: str, reason: str) -> dict[str, Any]:
        from bench.record.redact import redact_config
        from bench.record.results import StepInfo, build_document

        config = self.config
        ended_wall = run.started_wall + (now - run.started_mono)
        meta = environment_metadata()
        workers = len(run.workers) if self.is_master else 1
        target: dict[str, Any] = {"kind": self.target_kind, "host": self.environment.host}
        if self.simulator is not None:
            target.update(
                simulator_profile=config.simulator_profile,
                time_scale=config.simulator_time_scale,
            )
        run_meta = {
            "id": run.id,
            "release": config.release,
            "target": target,
            "workers": workers,
            # Optional (v2 tolerates extra run keys): ids of workers lost mid-run.
            "workers_lost": self.lost_workers(),
            "started_at": iso(run.started_wall),
            "ended_at": iso(ended_wall),
            "duration_s": round(now - run.started_mono, 3),
            "exit_code": code,
            "exit_reason": why,
            "end_reason": reason,
            **meta,
        }
        config_meta = {
            "poll_interval_s": config.poll_interval,
            "ladder": list(config.ladder.levels),
            "step_time_s": config.ladder.step_time,
            "settle_s": config.ladder.settle,
            "ready_timeout_s": config.ready_timeout,
            "hold_s": config.hold,
            "max_sessions": config.max_sessions,
            "session_config": redact_config(config.session_config),
            "session_config_source": config.session_config_source,
            "max_poll_errors": config.max_poll_errors,
            "protocol_error_threshold": config.protocol_error_threshold,
            "scenario_version": SCENARIO_VERSION,
        }
        steps = [
            StepInfo(
                index=s.index,
                target=s.target,
                started=s.started - run.started_mono,
                ended=(s.ended or now) - run.started_mono,
            )
            for s in run.steps
        ]
        return build_document(
            run=run_meta,
            config=config_meta,
            steps=steps,
            recorder=self.recorder,
            cleanup=self.cleanup_report,
            timeline=run.timeline.to_document(),
        )

    def _report(self) -> None:
        """Build the report next to the results; a failure costs the report, never the data."""
        from bench.present.report import build_report

        directory = self.results_dir()
        try:
            html = build_report([directory / "results.json"], directory)
        except Exception as exc:  # any bug in the report must not turn a good run into a crash
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            log.error("report not built (the results are kept): %s", first)
            return
        log.info("report written to %s", html)

    def results_dir(self) -> Path:
        assert self.run is not None
        return Path(self.config.results_dir or Path("reports") / self.run.id)

    def _write(self, document: dict[str, Any]) -> None:
        from bench.record.hlog import write_hlogs
        from bench.record.results import write_results

        directory = self.results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        write_results(directory / "results.json", document)
        write_hlogs(directory / "hlog", document)
        if self.journey_log:
            (directory / "journeys.jsonl").write_bytes(b"".join(self.journey_lines))
        log.info("results written to %s", directory / "results.json")


_NO_SESSION_OUTCOMES = frozenset(
    {
        Outcome.FAILED,
        Outcome.CANCELLED,
        Outcome.COMPLETED_BEFORE_READY,
        Outcome.CREATE_ERROR,
        Outcome.CREATE_REJECTED,
    }
)


def _split(total: int | None, parts: int) -> list[int | None]:
    """Share a session cap between workers as evenly as integers allow."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, max(parts, 1))
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _fire_phase_events(environment: Environment, result: JourneyResult) -> None:
    """Show phases and outcomes in Locust's own stats (web UI, --csv) under stable names."""
    fire = environment.events.request.fire
    for metric in (*TIMED_PHASES, "ready", "ready_seen"):
        values = result.samples.get(metric)
        if values:
            fire(
                request_type="PHASE",
                name=metric,
                response_time=values[0] / 1000.0,
                response_length=0,
                exception=None,
                context={},
            )
    ok = result.outcome is Outcome.READY
    fire(
        request_type="JOURNEY",
        name=result.outcome.value,
        response_time=(result.samples.get("ready_seen") or [0.0])[0] / 1000.0,
        response_length=0,
        exception=None if ok else JourneyFailed(result.outcome.value),
        context={},
    )


class JourneyFailed(Exception):
    """A journey that did not reach ready (shown in Locust's failures table)."""


def _journey_line(
    step: int, warmup: bool, result: JourneyResult, journey: Any, node: str
) -> bytes:
    return orjson.dumps(
        {
            "request_id": journey.request_id,
            "session_id": journey.session_id,
            "step": step,
            "warmup": warmup,
            "outcome": result.outcome.value,
            "http_status": result.http_status,
            "unobserved": result.unobserved,
            "estimates": {k: [v.value, v.uncertainty] for k, v in result.estimates.items()},
            "samples_us": {k: v for k, v in result.samples.items() if k != "poll"},
            "polls": len(result.samples.get("poll", ())),
            "node": node,  # the worker's client id ("local" in one process)
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


# --- event listeners -----------------------------------------------------------------------

_harness: Harness | None = None


def harness() -> Harness:
    if _harness is None:
        raise RuntimeError("the bench plugin was not initialised (no init event yet)")
    return _harness


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
    global _harness
    options = environment.parsed_options
    if options is None:
        return
    try:
        config = from_options(options)
    except ConfigError as exc:
        _fail(str(exc))
        return
    _harness = Harness(environment, config)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(MSG_SETUP, _on_setup)
        runner.register_message(MSG_STEP, _on_step)
        runner.register_message(MSG_DRAIN, _on_drain)
        # Ctrl-C in a terminal reaches every process of its group, the workers that
        # --processes forked included: the master ends the run and tells them.  A worker
        # on its own still stops at once on SIGTERM.
        gevent.signal_handler(signal.SIGINT, _worker_ignores_sigint)
        return
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_DELTA, _on_delta)
    if not environment.stop_timeout:
        # Without it Locust kills users mid-poll when a step ends or the run stops.
        environment.stop_timeout = config.drain_timeout
    # gevent handlers replace Python's KeyboardInterrupt and run in their own greenlet.
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, _harness.on_signal)
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
        _harness.start_target()
    except Exception as exc:  # the simulator could not start: say why, in one line
        _fail(f"could not start the embedded simulator: {exc}")


def _worker_ignores_sigint() -> None:
    log.info("worker: SIGINT ignored, the master ends the run (SIGTERM stops this worker now)")


def _on_setup(environment: Environment, msg: Any, **_: Any) -> None:
    harness().setup_worker(msg.data)


def _on_step(environment: Environment, msg: Any, **_: Any) -> None:
    harness().switch_step(int(msg.data["index"]))


def _on_drain(environment: Environment, msg: Any, **_: Any) -> None:
    harness().request_drain()


def _on_delta(environment: Environment, msg: Any, **_: Any) -> None:
    harness().on_delta(msg.node_id, msg.data)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if _harness is None or isinstance(environment.runner, WorkerRunner):
        return
    _harness.begin_run()
    _harness.enter_step(0, _harness.config.ladder.levels[0])


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    h = _harness
    if h is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        # Users are stopped: ship what is left, and say so.
        h.request_drain()
        if h.orphans.open:
            h.resolve_orphans()
        h.ship(drained=True)
        return
    if h.run is None or h.run.finalised:
        return
    h.begin_drain()
    # In a greenlet of its own: test_stop may run in one of the runner's greenlets
    # (the heartbeat's, when the last worker went missing), which Locust kills 0.5 s
    # into quitting; the clean-up and the results must not die with it.
    h.finaliser = gevent.spawn(_drain_and_finalise, h, environment)
    h.finaliser.join()


def _drain_and_finalise(h: Harness, environment: Environment) -> None:
    if isinstance(environment.runner, MasterRunner):
        deadline = time.monotonic() + h.config.drain_timeout + 15
        while not h.drained() and time.monotonic() < deadline:
            gevent.sleep(0.2)
    h.finalise("stopped")


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    h = _harness
    if h is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        if h.finaliser is not None:
            h.finaliser.join(timeout=h.config.drain_timeout + 45)
        if h.interrupted and h.run is not None and not h.run.finished:
            h.wait_for_interrupted_run()
        if h.run is not None and not h.run.finalised:
            h.finalise("quit")
    finally:
        h.stop_target()


def counts_summary(recorder: Recorder) -> str:
    journeys, outcomes = recorder.totals()
    parts = ", ".join(f"{k} {v}" for k, v in sorted(Counter(outcomes).items()) if v)
    return f"{journeys} journeys: {parts}"


__all__ = ["Harness", "LocalRunner", "add_options", "harness"]
