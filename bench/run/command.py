"""The Locust command line of a `bench run` (pure: options + run folder -> argv)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.measure.harness_config import API_KEY_ENV
from bench.run.arguments import DEFAULT_MASTER_PORT, RunOptions

CSV_PREFIX = "locust"  # Locust writes locust_stats.csv, locust_stats_history.csv, ...


def locust_command(
    options: RunOptions, run_dir: Path, python: str, master_port: int | None = None
) -> list[str]:
    """argv for the headless Locust run that writes its results into `run_dir`.

    `master_port`: with --processes and no --master-bind-port, the loopback port the
    master and its forked workers meet on (Locust's default, 5557 on every
    interface, collides with any other run on the machine).

    The API key never appears here: Locust's processes read it from the environment.
    `--only-summary` drops Locust's periodic stats table (the harness prints its own
    progress line, which is far shorter); the final summary is kept.
    """
    argv = [
        python, "-m", "locust",
        "-f", str(options.locustfile),
        "--headless", "--only-summary",
        "--csv", str(run_dir / CSV_PREFIX),
        "--results-dir", str(run_dir),
        # The folder is named after the run: the results carry the same id.
        "--run-id", run_dir.name,
        # `bench run` builds the report itself, with the thresholds' SLO, into report/.
        "--no-report",
    ]  # fmt: skip
    argv += options.harness_args
    if not any(arg.startswith("--release=") for arg in options.harness_args):
        # The folder name carries the release, so the results must carry the same label.
        argv.append(f"--release={options.release}")
    if options.host:
        argv += ["--host", options.host]
    if options.processes is not None:
        argv += ["--processes", str(options.processes)]
        port = options.master_bind_port if options.master_bind_port is not None else master_port
        if port is not None:
            argv += [
                "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(port),
                "--master-port", str(port),
            ]  # fmt: skip
    if options.expect_workers is not None:
        argv += [
            "--master",
            "--expect-workers", str(options.expect_workers),
            "--master-bind-host", options.master_bind_host,
            "--master-bind-port", str(options.master_bind_port or DEFAULT_MASTER_PORT),
        ]  # fmt: skip
    # Last, so Locust (which validates them) sees them as the user's final word.
    argv += options.locust_args
    return argv


def child_environment(options: RunOptions, environ: Mapping[str, str]) -> dict[str, str]:
    """The Locust process's environment.

    Against the embedded simulator no real key is needed, so none is handed down: a
    key that is not there cannot leak into a simulator run's logs or files.
    """
    env = dict(environ)
    if not options.host:
        env.pop(API_KEY_ENV, None)
    # Line-buffered output from the child, so progress lines arrive as they are logged.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def chooses_master_port(options: RunOptions) -> bool:
    """Whether `bench run` should pick the --processes meeting port (the user did not)."""
    given = {arg.split("=", 1)[0] for arg in options.locust_args}
    return options.processes is not None and options.master_bind_port is None and not given & {
        "--master-bind-port", "--master-port", "--master-bind-host", "--master-host"
    }


__all__ = ["CSV_PREFIX", "child_environment", "chooses_master_port", "locust_command"]
