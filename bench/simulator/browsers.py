"""The chromium backend: a real headless Chromium per provisioning request, on loopback.

When a request reaches provisioning the model tells us (ModelListener.launch); we start a
browser with a fresh user-data-dir and `--remote-debugging-port=0` on 127.0.0.1, read the
port it picked from its `DevTools listening on ws://...` stderr line, and ask its
/json/version: the answer ends provisioning (SessionModel.provisioned), and its
webSocketDebuggerUrl becomes the session's cdp_url.  So provisioning time is the
browser's real start-up time.

No browser outlives its session or the simulator:

* each browser leads a process group of its own, and is killed as a group (SIGKILL to
  every Chromium process: browser, zygotes, GPU, network service, renderers) when its
  request gives its slot back (DELETE, expiry, cancel, failure) or the simulator stops;
* each browser gets PR_SET_PDEATHSIG(SIGKILL), so the kernel kills it when the simulator
  dies, even by SIGKILL; its other processes then exit on their own (checked with ps:
  without the death signal all nine processes of a browser outlive a SIGKILLed parent,
  with it none does);
* the simulator makes itself a child subreaper, so the group's processes, orphaned when
  the browser dies, become its children and are reaped here instead of lingering as
  zombies under a PID 1 that may not reap (as on this project's VMs).

Everything runs on the event loop: asyncio subprocesses, stderr read by tasks, no thread
(a thread would make the fork of the next launch unsafe).  Linux only for the two prctl
calls; elsewhere browsers are still killed on DELETE, expiry and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.simulator.model import SessionModel
from bench.simulator.profile import BackendParams

EXECUTABLE_ENV = "BENCH_CHROMIUM"
# Debian's /usr/bin/chromium is a shell wrapper that adds flags of its own and execs this.
_CANDIDATES = ("/usr/lib/chromium/chromium",)
_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Loopback only, headless, and nothing phoning home: without the background-networking
# flags a browser opens connections to Google's services at start, many at a time.
FIXED_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
USER_DATA_PREFIX = "bench-cr-"  # short: see BrowserPool.__init__
_DEVTOOLS_LINE = re.compile(rb"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_REAP_WAIT_S = 2.0


def find_executable(params: BackendParams) -> str | None:
    """The Chromium to run: the profile's, $BENCH_CHROMIUM, Debian's binary, or PATH's."""
    for candidate in (params.executable, os.environ.get(EXECUTABLE_ENV, "")):
        if candidate:
            return candidate if os.access(candidate, os.X_OK) else None
    for path in _CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


_LIBC = _libc()


def _child_setup(parent: int) -> Callable[[], None]:
    """The browser's preexec_fn: its own process group, and death with the simulator."""

    def setup() -> None:
        os.setpgid(0, 0)
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The parent may have died between fork and prctl: then no signal would come.
            if os.getppid() != parent:
                os._exit(1)

    return setup


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (zombies included), read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses).
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


@dataclass
class _Browser:
    request_id: str
    record: dict[str, Any]
    proc: asyncio.subprocess.Process | None = None
    user_data_dir: str = ""
    released: bool = False
    kill: asyncio.Task[None] | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    drain: asyncio.Task[None] | None = None


class BrowserPool:
    """Real browsers for the chromium backend, one per request; also a ModelListener."""

    def __init__(
        self,
        params: BackendParams,
        model: SessionModel,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        executable = find_executable(params)
        if executable is None:
            raise RuntimeError(
                "the chromium backend needs a Chromium: install Debian's chromium, or set "
                f"{EXECUTABLE_ENV} or [backend] executable"
            )
        self.executable = executable
        self._params = params
        self._model = model
        self._clock = clock
        self._browsers: dict[str, _Browser] = {}  # request id -> browser not yet reaped
        self._records: dict[str, dict[str, Any]] = {}  # request id -> truth, kept
        self._counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        # One folder for every browser's user-data-dir: tests and people can tell our
        # browsers by it, and $TMPDIR decides where it lives.  Names are short, and
        # $TMPDIR should be: Chromium's singleton UNIX socket goes below a browser's
        # folder (see _launch), 45 bytes deeper, and a socket path has at most 107 bytes.
        self.root = tempfile.mkdtemp(prefix=f"{USER_DATA_PREFIX}{os.getpid()}-")
        self._closing = False
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    # ------------------------------------------------------------------ model listener

    def launch(self, request_id: str) -> None:
        record: dict[str, Any] = {
            "request_id": request_id, "pid": None, "user_data_dir": None,
            "launched": self._stamp(self._clock()), "answered": None, "startup_s": None,
            "cdp_url": None, "failure": None, "killed": None, "kill_reason": None,
            "exit_code": None, "reaped": 0,
        }
        self._records[request_id] = record
        browser = self._browsers[request_id] = _Browser(request_id, record)
        self._counts["launched"] += 1
        self._spawn(self._launch(browser))

    def released(self, request_id: str, session_id: str | None) -> None:
        browser = self._browsers.get(request_id)
        if browser is None:
            return
        browser.released = True
        if session_id is not None:
            browser.record["session_id"] = session_id
        if browser.proc is not None:
            self._spawn(self._kill(browser, "released"))
        # Not spawned yet: _launch sees `released` as soon as it has a process.

    # ------------------------------------------------------------------ launching

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stamp(self, t: float) -> dict[str, float]:
        return {"t": t - self._model.start_mono, "mono": t}

    async def _launch(self, browser: _Browser) -> None:
        record = browser.record
        t0 = self._clock()
        deadline = t0 + self._params.launch_timeout_s
        try:
            browser.user_data_dir = tempfile.mkdtemp(prefix="", dir=self.root)
            record["user_data_dir"] = browser.user_data_dir
            browser.proc = await asyncio.create_subprocess_exec(
                self.executable,
                *FIXED_FLAGS,
                f"--user-data-dir={browser.user_data_dir}",
                *self._params.extra_args,
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_child_setup(os.getpid()),
                # Chromium's own temporary files (its singleton socket's folder) go inside
                # the user-data-dir, so they leave with it even after a SIGKILL.
                env={**os.environ, "TMPDIR": browser.user_data_dir},
            )
        except OSError as exc:
            await self._failed(browser, f"cannot start {self.executable}: {exc.strerror}")
            return
        record["pid"] = browser.proc.pid
        if browser.released or self._closing:
            await self._kill(browser, "released" if browser.released else "shutdown")
            return
        try:
            port = await asyncio.wait_for(self._devtools_port(browser), deadline - self._clock())
            cdp_url = await asyncio.wait_for(self._version(port), deadline - self._clock())
        except TimeoutError:
            await self._failed(browser, f"no answer within {self._params.launch_timeout_s:g} s")
            return
        except (OSError, aiohttp.ClientError, ValueError, KeyError) as exc:
            await self._failed(browser, f"{type(exc).__name__}: {exc}")
            return
        t_answer = self._clock()
        record["answered"] = self._stamp(t_answer)
        record["startup_s"] = t_answer - t0
        record["cdp_url"] = cdp_url
        if browser.released or self._closing:
            await self._kill(browser, "released" if browser.released else "shutdown")
            return
        self._counts["answered"] += 1
        if not self._model.provisioned(browser.request_id, t_answer, cdp_url):
            # The request was cancelled meanwhile (DELETE all): nobody will use it.
            await self._kill(browser, "cancelled")

    async def _failed(self, browser: _Browser, cause: str) -> None:
        tail = " | ".join(browser.stderr_tail)
        browser.record["failure"] = cause + (f" (stderr: {tail})" if tail else "")
        self._counts["failed"] += 1
        await self._kill(browser, "launch_failed")
        self._model.provision_failed(browser.request_id, self._clock())

    async def _devtools_port(self, browser: _Browser) -> int:
        """Read stderr up to the DevTools line, then leave a task draining the rest."""
        proc = browser.proc
        assert proc is not None and proc.stderr is not None
        while True:
            line = await proc.stderr.readline()
            if not line:
                raise OSError(f"exited with code {await proc.wait()} before listening")
            match = _DEVTOOLS_LINE.search(line)
            if match:
                break
            browser.stderr_tail.append(line.decode("utf-8", "replace").strip()[:200])
        # A full stderr pipe would block the browser: keep reading (and dropping) it.
        browser.drain = asyncio.get_running_loop().create_task(self._drain(proc.stderr))
        return int(match.group(2))

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def _version(self, port: int) -> str:
        """The browser answers /json/version: its webSocketDebuggerUrl."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/version") as response:
            if response.status != 200:
                raise ValueError(f"/json/version answered {response.status}")
            body = orjson.loads(await response.read())
        url = body["webSocketDebuggerUrl"]
        if not isinstance(url, str) or not url.startswith(f"ws://127.0.0.1:{port}/"):
            raise ValueError(f"unexpected webSocketDebuggerUrl {url!r}")
        return url

    # ------------------------------------------------------------------ killing

    async def _kill(self, browser: _Browser, reason: str) -> None:
        if browser.kill is None:
            browser.kill = asyncio.get_running_loop().create_task(self._do_kill(browser, reason))
        await asyncio.shield(browser.kill)

    async def _do_kill(self, browser: _Browser, reason: str) -> None:
        record = browser.record
        proc = browser.proc
        if proc is not None:
            # The browser leads its group (setpgid in _child_setup): the group is all of it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            record["exit_code"] = await proc.wait()
            record["reaped"] = await self._reap(proc.pid)
            if browser.drain is not None:
                await browser.drain
        record["killed"] = self._stamp(self._clock())
        record["kill_reason"] = reason
        self._counts["killed"] += 1
        if browser.user_data_dir:
            # A used profile is a few hundred small files: milliseconds, on the loop
            # rather than in a thread (see the module's docstring).
            shutil.rmtree(browser.user_data_dir, ignore_errors=True)
        self._browsers.pop(browser.request_id, None)

    async def _reap(self, pgid: int) -> int:
        """Reap the group's processes, our children now that their browser is gone."""
        if _LIBC is None:
            return 0
        reaped = 0
        deadline = time.monotonic() + _REAP_WAIT_S
        pending = set(group_members(pgid))
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    # Not ours (re-parented elsewhere, or reaped already): nothing to do.
                    pending.discard(pid)
                    continue
                if done:
                    reaped += 1
                    pending.discard(pid)
            if pending:
                await asyncio.sleep(0.01)
        return reaped

    async def close(self) -> None:
        """Kill every browser (the simulator is stopping) and remove their folder."""
        self._closing = True
        kills = [
            self._kill(browser, "shutdown")
            for browser in list(self._browsers.values())
            if browser.proc is not None
        ]
        if kills:
            await asyncio.gather(*kills, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Launches cancelled above may have left a process: kill those too.
        leftovers = [
            self._kill(browser, "shutdown")
            for browser in list(self._browsers.values())
            if browser.proc is not None
        ]
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ truth

    @property
    def alive(self) -> int:
        return sum(1 for b in self._browsers.values() if b.proc is not None)

    def counters(self) -> dict[str, Any]:
        return {
            "executable": self.executable,
            "user_data_root": self.root,
            "launched": self._counts["launched"],
            "answered": self._counts["answered"],
            "failed": self._counts["failed"],
            "killed": self._counts["killed"],
            "alive": self.alive,
        }

    def truth(self) -> dict[str, dict[str, Any]]:
        """Per request that launched a browser: its pid, folder, instants and fate."""
        return {rid: dict(record) for rid, record in self._records.items()}


__all__ = [
    "EXECUTABLE_ENV",
    "FIXED_FLAGS",
    "USER_DATA_PREFIX",
    "BrowserPool",
    "find_executable",
    "group_members",
]
