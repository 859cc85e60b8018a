"""The coordinator of a run: ladder steps, timeline, progress, workers, drain, finalising.

It runs in the master of a distributed run, or in the one local process; it talks
to whoever runs the users through a Fleet and never asks which kind it has.  The
run ends in three moves so that nothing measured is lost: the ladder ends -> users
ramp to 0 with a graceful stop timeout (journeys finish) -> every load side reports
"drained" with its final delta -> the shape returns None and the coordinator
finalises (clean-up sweep, results, exit code).
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import replace
from typing import Any

import gevent

from bench.core import exitcodes
from bench.measure import cleanup
from bench.measure.driver import create_body
from bench.measure.fleet import Fleet
from bench.measure.harness_config import (
    ConfigError,
    HarnessConfig,
    from_options,
    normalise_host,
)
from bench.measure.lifecycle import RunState, SignalAction
from bench.measure.loadside import gevent_cleaner
from bench.measure.output import (
    TIMELINE_INTERVAL,
    RunMarks,
    StepMark,
    Verdict,
    build_run_report,
    results_dir,
    results_document,
    write_run,
)
from bench.measure.target import Target
from bench.measure.transport import HttpxTransport
from bench.measure.verdict import exit_verdict
from bench.record.runinfo import new_run_id
from bench.record.timeline import Totals, progress_line

log = logging.getLogger("bench")

DRAIN_GRACE = 15.0  # seconds past the drain timeout before finishing with what was shipped


class Coordinator:
    """The run as a whole.  Only gevent greenlets touch it, so no locks are needed."""

    def __init__(
        self, environment: Any, config: HarnessConfig, fleet: Fleet, target: Target
    ) -> None:
        self.environment = environment
        self.config = config
        self.fleet = fleet
        self.target = target
        self.run: RunMarks | None = None
        self.state = RunState()
        self.cleanup_report: dict[str, Any] = {}
        self.stop_timeout = 0.0  # Locust's, saved while an interrupt sets it to 0
        self._interrupter: Any = None  # the greenlet finishing an interrupted run
        self._sampler: Any = None
        self.finaliser: Any = None  # the greenlet draining and finalising (test_stop)
        self._next_run_id: str | None = getattr(environment.parsed_options, "run_id", None) or None

    @property
    def recorder(self) -> Any:
        return self.fleet.recorder

    # --- the run and its steps --------------------------------------------------------

    def begin_run(self) -> None:
        if self.target.simulator is not None and not self.environment.host:
            # The web UI's form sends its host field as is: an emptied field must not
            # leave the run without the embedded simulator it was started with.
            self.environment.host = self.target.url
        elif self.environment.host:
            try:  # the web UI's host field, as typed: the same normalisation as --host
                self.environment.host = normalise_host(self.environment.host)
            except ConfigError as exc:
                log.error("Error: %s", exc)
        if self.state.interrupted:
            # A web-UI process outlives an interrupted run: the next run starts afresh.
            self.environment.stop_timeout = self.stop_timeout
        options = self.environment.parsed_options
        if options is not None:
            try:
                # Web-UI edits arrive in parsed_options at each start; the target stays.
                self.config = replace(from_options(options), host=self.config.host)
            except ConfigError as exc:
                log.error("Error: %s", exc)
        # --run-id names the first run only: a web-UI restart is a new run with a new id.
        run_id, self._next_run_id = self._next_run_id or new_run_id(), None
        self.run = RunMarks(run_id, time.monotonic(), time.time())
        self.state.start()
        self.cleanup_report = {}
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_loop)
        self.fleet.start(self.setup(run_id), self.config.max_sessions)

    def setup(self, run_id: str) -> dict[str, Any]:
        """What a load side needs to run journeys exactly as the coordinator was told to."""
        config = self.config
        return {
            "run_id": run_id,
            "kind": self.target.kind,
            "poll_interval": config.poll_interval,
            "ready_timeout": config.ready_timeout,
            "hold": config.hold,
            "max_poll_errors": config.max_poll_errors,
            "settle": config.ladder.settle,
            "journey_log": config.journey_log,
            "create_body": create_body(config.session_config, f"bench-run-{run_id}"),
            "tls": config.tls.to_wire(),
            "open": None
            if config.open_model is None
            else {"rates": list(config.open_model.rates), "arrivals": config.open_model.arrivals},
            "cdp": None
            if config.cdp is None
            else {"navigate": self._navigate_url(), "timeout": config.cdp.timeout},
        }

    def _navigate_url(self) -> str | None:
        """--cdp-navigate's URL; a path is taken from the target host (the simulator's page)."""
        navigate = self.config.cdp.navigate if self.config.cdp else None
        if navigate and navigate.startswith("/"):
            return (self.environment.host or "").rstrip("/") + navigate
        return navigate

    def enter_step(self, index: int, target: int) -> None:
        """Called by the shape when a ladder step begins."""
        assert self.run is not None
        now = time.monotonic()
        if self.run.steps:
            self.run.steps[-1].ended = now
        model = self.config.open_model
        rate = model.rates[index] if model is not None else None
        mark = StepMark(index, target, now, arrival_rate=rate)
        self.run.steps.append(mark)
        log.info("ladder step %d: %s", index + 1, mark.describe())
        self.fleet.enter_step(index)

    def begin_drain(self) -> None:
        assert self.run is not None
        now = time.monotonic()
        if not self.state.drain(now):
            return
        if self.run.steps and self.run.steps[-1].ended is None:
            self.run.steps[-1].ended = now
        log.info(
            "ladder done: draining in-flight journeys (up to %.0f s)", self.config.drain_timeout
        )
        self.fleet.drain()

    def drained(self) -> bool:
        """Whether the run may end: every load side drained, or the drain deadline passed."""
        if self.run is None or not self.state.draining:
            return False
        if self.state.drain_overdue(time.monotonic(), self.config.drain_timeout + DRAIN_GRACE):
            log.warning("drain timed out; finishing with what was shipped")
            return True
        return self.fleet.drained()

    def should_stop_ladder(self) -> bool:
        """End the ladder early: the session cap was reached everywhere, or the provider
        refused the key (or to create sessions) and no later journey could do better."""
        return self.run is not None and (self.fleet.capped() or self.fleet.refused() is not None)

    def wait_drained(self) -> None:
        """Block (this greenlet) until drained, bounded by the drain timeout."""
        deadline = time.monotonic() + self.config.drain_timeout + DRAIN_GRACE
        while not self.drained() and time.monotonic() < deadline:
            gevent.sleep(0.2)

    # --- timeline and progress ------------------------------------------------------------

    def _sample_loop(self) -> None:
        # Bounded by the process: it samples the run in force and idles between runs.
        last_progress = time.monotonic()
        while True:
            run = self.run
            if run is not None and not self.state.finalised:
                step = run.current
                self.fleet.maintain(
                    self.setup(run.id), step.index if step else None, self.state.draining
                )
                self.sample(run)
                interval = self.config.progress_interval
                now = time.monotonic()
                if interval and now - last_progress >= interval:
                    last_progress = now
                    log.info("%s", self.progress(run))
            gevent.sleep(TIMELINE_INTERVAL)

    def _totals(self) -> Totals:
        journeys, outcomes = self.recorder.totals()
        return Totals.of(journeys, outcomes)

    def sample(self, run: RunMarks) -> None:
        step = run.current if not self.state.draining else None
        runner = self.environment.runner
        run.timeline.sample(
            time.monotonic() - run.started_mono,
            step=step.index if step else None,
            target=step.target if step else 0,
            users=runner.user_count if runner is not None else 0,
            in_flight=self.fleet.in_flight(),
            totals=self._totals(),
        )

    def progress(self, run: RunMarks) -> str:
        ladder = self.config.ladder
        step = run.current
        return progress_line(
            step=step.index if step else None,
            steps=len(ladder.levels),
            target=step.target if step else 0,
            elapsed_s=time.monotonic() - run.started_mono,
            ladder_s=ladder.step_time * len(ladder.levels),
            in_flight=self.fleet.in_flight(),
            totals=self._totals(),
            draining=self.state.draining,
            load=None if step is None or step.arrival_rate is None else (
                f"{step.arrival_rate:g} sessions/s"
            ),
        )

    # --- the end -----------------------------------------------------------------------------

    def finalise(self, reason: str) -> None:
        """Clean up, write the results, set the exit code.  Runs once per run."""
        run = self.run
        if run is None or not self.state.finalise():
            return
        lost = self.fleet.fix_lost()
        if self.state.interrupted:
            reason = "interrupted"
            # Results first, clean-up second: whatever comes next (a second signal, a
            # SIGKILL), what was measured is on disk; the final write replaces this one.
            self.cleanup_report = cleanup.unswept_report(self.fleet.unresolved())
            try:
                self._write(run, time.monotonic(), reason, lost)
            except OSError as exc:  # the clean-up below matters more; the final write retries
                log.error("could not write the interim results: %s", exc)
        self.fleet.before_finalise()
        now = time.monotonic()
        for step in run.steps:
            if step.ended is None:
                step.ended = now
        self.sample(run)  # the last, partial interval
        self.cleanup_report = self._final_cleanup(run)
        verdict = self._write(run, now, reason, lost)
        self.state.finish()
        if self.config.report:
            build_run_report(results_dir(self.config, run.id))
        self.environment.process_exit_code = verdict.code
        log.info("run %s finished: %s (exit code %d)", run.id, verdict.why, verdict.code)

    def _final_cleanup(self, run: RunMarks) -> dict[str, Any]:
        """Sweep the tag; say what is not confirmed ended (bounded by the drain timeout)."""
        host = self.environment.host
        if not host:
            return cleanup.final_report(None, self.fleet.unresolved(), run.tag, 0.0)
        client = HttpxTransport(host, self.target.api_key, self.config.tls)
        try:
            return cleanup.final_report(
                gevent_cleaner(client, random.Random(), self.config.poll_interval),
                self.fleet.unresolved(),
                run.tag,
                time.monotonic() + self.config.drain_timeout,
                self.config.poll_interval,
            )
        finally:
            client.close()

    def verdict(self, reason: str, lost: list[str]) -> Verdict:
        journeys, outcomes = self.recorder.totals()
        code, why = exit_verdict(
            journeys=journeys,
            outcomes=outcomes,
            violations=self.recorder.invariant_violations(),
            protocol_error_threshold=self.config.protocol_error_threshold,
            lost_workers=lost,
            cleanup=self.cleanup_report,
            refused=self.fleet.refused(),
            rejections=self.recorder.rejections(),
        )
        return Verdict(code, why, reason)

    def _write(
        self, run: RunMarks, now: float, reason: str, lost: list[str], prefix: str = ""
    ) -> Verdict:
        verdict = self.verdict(reason, lost)
        if prefix:
            verdict = Verdict(verdict.code, prefix + verdict.why, verdict.reason)
        target: dict[str, Any] = {"kind": self.target.kind, "host": self.environment.host}
        if self.target.simulator is not None:
            target.update(
                simulator_profile=self.config.simulator_profile,
                time_scale=self.config.simulator_time_scale,
            )
        document = results_document(
            run,
            now=now,
            verdict=verdict,
            config=self.config,
            target=target,
            workers=self.fleet.size(),
            workers_lost=lost,
            recorder=self.recorder,
            cleanup=self.cleanup_report,
        )
        journeys = self.fleet.take_journey_lines() if self.config.journey_log else None
        write_run(results_dir(self.config, run.id), document, journeys)
        return verdict

    # --- signals -------------------------------------------------------------------------------

    def on_signal(self) -> None:
        """SIGINT/SIGTERM (run by gevent in a greenlet of its own).

        Locust cannot be left to it: during a headless shape run (ours) its SIGTERM
        handler is not installed yet, so SIGTERM killed the process with nothing written,
        and SIGINT stopped the users gracefully (up to the stop timeout) with no way to
        say "now".  Here the first signal interrupts the run; the second stops at once.
        """
        if self.state.signal() is SignalAction.STOP_NOW:
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
        log.warning(
            "interrupted: aborting journeys, writing results and ending sessions (up to "
            "%.0f s); a second signal stops at once",
            self.config.drain_timeout,
        )
        self.stop_timeout = self.environment.stop_timeout or self.config.drain_timeout
        self.environment.stop_timeout = 0  # cut journeys now: their sessions are ended below
        if not self.fleet.stop_users_now():
            self.begin_drain()
            return
        if self.run is not None and not self.state.finalised:
            self.finalise("interrupted")

    def stop_now(self) -> None:
        """Second signal: write what was gathered (no network), then exit at once."""
        code = self.environment.process_exit_code or exitcodes.OK
        run = self.run
        try:
            if run is not None and not self.state.finished:
                # The fresh view of what is not ended, unless a sweep already confirmed
                # the end state (the interim report written first is stale by now).
                swept = bool(self.cleanup_report.get("sweep_ok"))
                if not swept:
                    self.cleanup_report = cleanup.unswept_report(self.fleet.unresolved())
                prefix = (
                    "" if swept else "stopped by a second signal before the clean-up finished: "
                )
                code = self._write(
                    run, time.monotonic(), "interrupted twice", self.fleet.lost(), prefix
                ).code
            log.warning("second signal: stopped at once (exit code %d)", code)
        finally:
            self.target.stop()
            logging.shutdown()
            os._exit(code)


__all__ = ["Coordinator"]
