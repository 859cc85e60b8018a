"""Helpers for tests that run the harness as real Locust processes against the simulator."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "async_sessions.py")
# One step of four users for two seconds, polling every 10 ms on the fast profile:
# a few hundred journeys, enough for every fault to show, in a few seconds.
USERS = 4
SHORT = (
    "--ladder", str(USERS),
    "--step-time", "2",
    "--settle", "0.2",
    "--poll-interval", "0.01",
    "--ready-timeout", "5",
    "--no-report",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def locust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args, *processes_port(args)]


def processes_port(args: Sequence[str]) -> list[str]:
    """For --processes, a free loopback port for the master and its forked workers:
    Locust's default 5557 collides with any other distributed run on the machine."""
    if "--processes" not in args or any(arg.startswith("--master") for arg in args):
        return []
    port = str(free_port())
    return ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port]


def master_args(
    port: int, host: str, out: Path, *, workers: int, ladder: str, step_time: str
) -> list[str]:
    """A headless master on 127.0.0.1:`port` for `workers` external workers, fast polling,
    journey log on, results in `out`."""
    return [
        "--master", "--headless", "--only-summary", "--no-report",
        "--expect-workers", str(workers),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--host", host, "--ladder", ladder, "--step-time", step_time, "--settle", "0.2",
        "--poll-interval", "0.01", "--ready-timeout", "5", "--journey-log",
        "--results-dir", str(out),
    ]  # fmt: skip


@contextlib.contextmanager
def locust_workers(
    port: int, logs_dir: Path, *, key: str, count: int = 2, name: str = "worker"
) -> Iterator[list[subprocess.Popen]]:
    """`count` Locust workers for a master on 127.0.0.1:`port`, logging to logs_dir/<name><i>.log.

    On exit each worker gets 30 s to quit by itself (the master tells it to), then is
    killed, so a hung worker can fail a test but never outlive it.
    """
    env = {**os.environ, "ANCHOR_API_KEY": key}
    logs = [(logs_dir / f"{name}{i}.log").open("wb") for i in range(count)]
    workers = [
        subprocess.Popen(
            locust_command("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        for log in logs
    ]  # fmt: skip
    try:
        yield workers
    finally:
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()


class LocustProcess:
    """A locust child whose stderr is read line by line on a thread (so it never blocks).

    `wait_for_line` waits for a log line (a readiness signal); everything is bounded by
    `timeout`, after which the child is killed so that a hung run fails the test.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        key: str,
        cwd: Path = ROOT,
        timeout: float = 90,
        command: Sequence[str] | None = None,
    ) -> None:
        env = {**os.environ, "ANCHOR_API_KEY": key}
        self.proc = subprocess.Popen(
            list(command) if command is not None else locust_command(*args),
            cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            # Its own process group, so a test can send a terminal's Ctrl-C (killpg).
            start_new_session=True,
        )  # fmt: skip
        self.deadline = time.monotonic() + timeout
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._stdout = b""
        self._threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._watchdog = threading.Timer(timeout, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self._stdout = self.proc.stdout.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, needle: str, start: int = 0) -> int:
        """Index of the first stderr line from `start` containing `needle` (bounded wait)."""
        with self._cond:
            while True:
                for i in range(start, len(self._lines)):
                    if needle in self._lines[i]:
                        return i
                left = self.deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._threads[0].is_alive()):
                    raise AssertionError(f"no line with {needle!r}:\n{self.stderr[-3000:]}")
                self._cond.wait(min(left, 0.5))

    def wait(self) -> int:
        code = self.proc.wait(max(1.0, self.deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(10)
        self._watchdog.cancel()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._lines)

    @property
    def stdout(self) -> str:
        return self._stdout.decode("utf-8", "replace")


@dataclass
class Finished:
    """A finished run: exit code, output, results document and journey log."""

    code: int
    stdout: str
    stderr: str
    doc: dict[str, Any]
    journeys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, int]:
        return {k: v for k, v in self.doc["totals"]["outcomes"].items() if v}

    def summed(self, key: str) -> Counter[str] | int:
        """A per-part counter or integer summed over every step, measured and warm-up."""
        parts = [part for step in self.doc["steps"] for part in (step["measured"], step["warmup"])]
        if isinstance(parts[0][key], dict):
            total: Counter[str] = Counter()
            for part in parts:
                total.update(part[key])
            return total
        return sum(part[key] for part in parts)

    @property
    def tag(self) -> str:
        return f"bench-run-{self.doc['run']['id']}"


def finish(proc: LocustProcess, results_dir: Path) -> Finished:
    code = proc.wait()
    doc = load_results(results_dir / "results.json").document
    journeys = []
    log = results_dir / "journeys.jsonl"
    if log.exists():
        journeys = [orjson.loads(line) for line in log.read_bytes().splitlines() if line]
    return Finished(code, proc.stdout, proc.stderr, doc, journeys)


def wait_until(
    sim: SimulatorProcess,
    condition: Callable[[dict[str, Any]], bool],
    proc: LocustProcess,
    *,
    what: str,
) -> dict[str, Any]:
    """Poll the simulator's counters until `condition` holds; bounded by the run's deadline.

    Waiting on a condition, not sleeping as synchronisation: the short pause only
    spaces the admin calls out.
    """
    while True:
        counters = sim.counters()
        if condition(counters):
            return counters
        if proc.proc.poll() is not None or time.monotonic() > proc.deadline:
            raise AssertionError(f"run ended before {what}: {counters}\n{proc.stderr[-3000:]}")
        time.sleep(0.01)


def endpoint_faults(counters: dict[str, Any], endpoint: str, kind: str) -> int:
    return int(counters["faults_by_endpoint"].get(endpoint, {}).get(kind, 0))


def assert_sound(run: Finished, unlogged_aborted: int = 0) -> None:
    """What must hold after any fault: no traceback, one outcome per journey, logs agree.

    `unlogged_aborted`: journeys a lost worker never finished, so never logged (their
    outcome, `aborted`, is the master's)."""
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text, text[-3000:]
    totals = run.doc["totals"]
    assert totals["invariant_ok"], totals["invariant_violations"]
    assert sum(totals["outcomes"].values()) == totals["journeys"] > 0
    for step in run.doc["steps"]:
        for part in (step["measured"], step["warmup"]):
            assert sum(part["outcomes"].values()) == part["journeys"]
    if run.journeys:
        assert len(run.journeys) + unlogged_aborted == totals["journeys"]
        logged = Counter(j["outcome"] for j in run.journeys)
        logged["aborted"] += unlogged_aborted
        assert +logged == Counter(run.outcomes)
