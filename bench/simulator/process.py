"""Launch `bench simulate` as a child process and talk to its admin endpoints."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Self

import httpx

from bench.simulator.server import LISTENING_PREFIX

API_KEY_ENV = "BENCH_SIMULATOR_API_KEY"


class SimulatorError(RuntimeError):
    """The simulator child did not start, or an admin call failed."""


class SimulatorProcess:
    """A `bench simulate` child on loopback; use as a context manager or start()/stop()."""

    def __init__(
        self,
        profile: str = "default",
        *,
        time_scale: float | None = None,
        seed: int | None = None,
        truth: bool = True,
        api_key: str,
        port: int = 0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.profile = profile
        self.time_scale = time_scale
        self.seed = seed
        self.truth_enabled = truth
        self.api_key = api_key
        self.requested_port = port
        self.extra_args = tuple(extra_args)
        self.url = ""
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "bench", "simulate", "--port", str(self.requested_port),
               "--profile", self.profile, "--api-key-env", API_KEY_ENV]
        if self.time_scale is not None:
            cmd += ["--time-scale", repr(float(self.time_scale))]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if self.truth_enabled:
            cmd.append("--truth")
        return [*cmd, "--exit-with-parent", *self.extra_args]

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise SimulatorError("simulator not started")
        return self._proc.pid

    def start(self, timeout: float = 15) -> Self:
        """Spawn the child and wait (reading its stdout pipe) for the `listening on` line."""
        if self._proc is not None:
            raise SimulatorError("simulator already started")
        env = {**os.environ, API_KEY_ENV: self.api_key}
        # stderr goes to a file, not a pipe: nobody drains it while the server runs,
        # and a full pipe would block the child on its first long traceback.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        # A session of its own: a terminal's Ctrl-C goes to the whole foreground process
        # group, and the harness needs its target alive to end sessions after the
        # interrupt.  The owner stops it (stop()); --exit-with-parent covers the owner's
        # death.
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, env=env, start_new_session=True,
        )
        try:
            line = self._read_line(timeout)
        except BaseException:
            self.stop()
            raise
        self.url = line.removeprefix(LISTENING_PREFIX).strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _read_line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise SimulatorError(
                        f"simulator did not announce its URL within {timeout:g} s"
                        + self._stderr_tail()
                    )
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:  # EOF: the child exited before listening
                    code = self._proc.wait()
                    raise SimulatorError(
                        f"simulator exited early with code {code}" + self._stderr_tail()
                    )
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode("utf-8", "replace")
        if not line.startswith(LISTENING_PREFIX):
            raise SimulatorError(f"unexpected first line from simulator: {line!r}")
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return f"; stderr:\n{text[-4000:]}" if text else "; stderr empty"

    def stderr(self) -> str:
        """Everything the child wrote to stderr so far."""
        return self._stderr_tail().removeprefix("; stderr:\n")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code

    def __enter__(self) -> Self:
        return self if self._proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin calls

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        if not self.url:
            raise SimulatorError("simulator not started")
        response = httpx.request(method, self.url + path, json=body, timeout=10)
        if response.status_code != 200:
            raise SimulatorError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def truth(self) -> dict[str, Any]:
        """GET /_sim/truth: every request's true transitions plus the counters."""
        return self._admin("GET", "/_sim/truth")

    def counters(self) -> dict[str, Any]:
        """GET /_sim/counters."""
        return self._admin("GET", "/_sim/counters")

    def set_faults(self, faults: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
        """PUT /_sim/faults: replace the whole fault table ({} switches faults off)."""
        return self._admin("PUT", "/_sim/faults", dict(faults))

    def add_foreign(self, count: int, tags: Sequence[str] | None = None) -> list[str]:
        """POST /_sim/foreign: start `count` live sessions no client of the run created.

        They carry `tags` (default: the profile's dialect.foreign_tags); the counters'
        `foreign` entry and the truth's `foreign_sessions` say whether a client ended them.
        """
        body: dict[str, Any] = {"count": count}
        if tags is not None:
            body["tags"] = list(tags)
        return self._admin("POST", "/_sim/foreign", body)["session_ids"]
