"""`bench run` end to end: run folder -> Locust child -> post-processing -> exit code."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.core.errors import UsageError
from bench.measure.harness_config import API_KEY_ENV
from bench.record.runinfo import new_run_id
from bench.run.arguments import RunOptions
from bench.run.command import child_environment, chooses_master_port, locust_command
from bench.run.execute import Execution, execute
from bench.run.post import finish, finish_repeat, finish_set


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now. Another process could take it in the seconds
    before Locust binds it (Locust then exits with its bind error, code 16); a fixed
    5557 is taken by any second run, every time."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_run_dir(options: RunOptions) -> Path:
    """reports/<release>/<run-id>/, created now so Locust's CSV and our log have a home.

    The folder's name is passed to the plugin as --run-id, so the results, the
    sessions' tag and the folder share one id.
    """

    run_dir = options.reports_dir / options.release / new_run_id()
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise UsageError(f"--reports-dir: cannot create {run_dir} ({exc.strerror})") from None
    return run_dir


def run(options: RunOptions, environ: Mapping[str, str] | None = None) -> int:
    """One whole headless benchmark; returns the exit code (see bench/run/post.py)."""
    env = os.environ if environ is None else environ
    if options.repeat > 1:
        return run_set(options, env)
    run_dir = new_run_dir(options)
    execution = run_locust(options, run_dir, env)
    return finish(options, run_dir, execution, env)


def run_set(options: RunOptions, env: Mapping[str, str]) -> int:
    """`--repeat N`: N runs back to back in one folder, then one result set and verdict.

    reports/<release>/<set-id>/<run-id>/ per repeat (each a normal run folder with its
    results.json, thresholds checked per run), then result-set.json naming the runs
    that ended cleanly, one report over them (with the spread between repeats), the
    comparison of the whole set with the baseline, and one summary.md.  A broken or
    interrupted repeat stops the set: its code wins, as for a single run.
    """
    set_dir = new_run_dir(options)
    repeats = []
    for number in range(1, options.repeat + 1):
        print(f"bench run: repeat {number} of {options.repeat}", flush=True)
        run_dir = set_dir / new_run_id()
        run_dir.mkdir()
        execution = run_locust(options, run_dir, env)
        outcome = finish_repeat(options, run_dir, execution, number)
        repeats.append(outcome)
        if outcome.run_code != 0:
            break
    return finish_set(options, set_dir, repeats, env)


def run_locust(options: RunOptions, run_dir: Path, env: Mapping[str, str]) -> Execution:
    """The Locust child of one run, its output streamed and logged into `run_dir`."""
    port = free_loopback_port() if chooses_master_port(options) else None
    argv = locust_command(options, run_dir, sys.executable, master_port=port)
    target = options.host or f"the embedded simulator ({options.config.simulator_profile})"
    ladder = options.config.ladder
    print(
        f"bench run: {len(ladder.levels)} steps x {ladder.step_time:g} s against {target}; "
        f"results under {run_dir.parent}/",
        flush=True,
    )
    return execute(
        argv,
        child_environment(options, env),
        run_dir / "locust.log",
        budget_s=options.time_budget_s,
        # SIGTERM makes the harness end sessions for up to its drain timeout: let it.
        grace_s=options.config.drain_timeout + 30.0,
        secrets=[env.get(API_KEY_ENV, "")],
    )


__all__ = ["new_run_dir", "run", "run_set"]
