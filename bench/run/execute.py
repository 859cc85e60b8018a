"""Run the Locust child: its output streamed through and kept in a log, a watchdog, signals."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

KILL_GRACE_S = 60.0  # after SIGTERM, the least Locust gets to write results and quit


@dataclass(frozen=True)
class Execution:
    returncode: int  # negative: killed by that signal (subprocess convention)
    timed_out: bool  # the watchdog had to stop it
    log: Path
    # SIGINT/SIGTERM received by `bench run` itself during the run (None: none).
    interrupted: int | None = None


def scrub(line: str, secrets: Sequence[str]) -> str:
    """`line` with every secret replaced: a last guard, the harness never logs the key."""
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line


def execute(
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    budget_s: float,
    grace_s: float = KILL_GRACE_S,
    secrets: Sequence[str] = (),
    out: TextIO | None = None,
) -> Execution:
    """Run `argv`, copying each output line to `out` (stdout) and to `log_path` as it comes.

    stderr is merged into stdout so the harness's log lines (progress, warnings) and
    Locust's summary arrive in the order they were written.  Past `budget_s` seconds
    the child gets SIGTERM (Locust then finalises and writes its results), and SIGKILL
    if it is still there `grace_s` later (at least KILL_GRACE_S: its clean-up is bounded
    by the drain timeout, which the caller passes in).  Ctrl-C reaches the child too (same
    process group): we keep reading until it has written its results and exited.
    """
    stream = out if out is not None else sys.stdout
    # Short secrets would scrub ordinary words; a real API key is long.
    secrets = [s for s in secrets if len(s) >= 8]
    timed_out = threading.Event()
    received: list[int] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        ) as proc,
    ):

        def stop() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

        watchdog = threading.Timer(budget_s, stop)
        killer = threading.Timer(budget_s + max(grace_s, KILL_GRACE_S), kill)
        for timer in (watchdog, killer):
            timer.daemon = True
            timer.start()
        previous = _forward_sigterm(proc, received)
        try:
            _pump(proc, stream, log, secrets, received)
        finally:
            watchdog.cancel()
            killer.cancel()
            _restore_sigterm(previous)
    return Execution(
        proc.returncode, timed_out.is_set(), log_path, received[0] if received else None
    )


def _pump(
    proc: subprocess.Popen[str],
    stream: TextIO,
    log: TextIO,
    secrets: list[str],
    received: list[int],
) -> None:
    assert proc.stdout is not None
    console = [stream]  # emptied when the console goes away (e.g. `bench run | head`)

    def show(text: str) -> None:
        if not console:
            return
        try:
            console[0].write(text)
            console[0].flush()
        except (BrokenPipeError, ValueError):
            # Keep draining the child into the log: a child blocked on a full pipe
            # would never finish its run and write its results.
            console.clear()

    while True:
        try:
            for line in proc.stdout:
                line = scrub(line, secrets)
                log.write(line)
                show(line)
            proc.wait()
            return
        except KeyboardInterrupt:
            received.append(signal.SIGINT)
            # The child got the same SIGINT and is finishing its run: keep its output
            # and results.  The watchdog still bounds how long that may take.
            show("bench run: interrupted; waiting for Locust to write the results\n")


def _forward_sigterm(proc: subprocess.Popen[str], received: list[int]) -> object:
    # A CI runner cancelling the job sends SIGTERM to us only; Locust must hear it too
    # to stop and write what it measured.
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: object) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


__all__ = ["Execution", "execute", "scrub"]
