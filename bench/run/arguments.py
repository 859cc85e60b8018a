"""`bench run`'s arguments and their validation into a frozen RunOptions (no Locust import).

The harness options are the plugin's own table (bench.measure.option_table
`add_options`): `bench run` offers the same names, checks the values it was given
with the same converters and bench.measure.harness_config up front (a typo costs
an `Error: ...` line, not a started simulator and a wasted ladder), and passes on
only those the user gave, so the plugin's defaults stay the single source of truth.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from bench.analyse.slo_gates import Thresholds, ThresholdsError, load_thresholds
from bench.core.errors import UsageError
from bench.core.text import short_repr
from bench.measure.harness_config import ConfigError, HarnessConfig, from_options
from bench.measure.option_table import add_options

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_LOCUSTFILE = ROOT / "locustfiles" / "async_sessions.py"
DEFAULT_MASTER_PORT = 5557  # Locust's, where external workers look by default

class _PluginParser(argparse.ArgumentParser):
    # The plugin's converters report a bad value through error(): make it a usage error.
    def error(self, message: str) -> NoReturn:
        raise _usage(message)


# The plugin's option table, read here without importing Locust.
_PLUGIN = _PluginParser(prog="bench run", add_help=False)
add_options(_PLUGIN)

# Set by `bench run` itself for every run, so not offered as options.
FIXED_OPTIONS = frozenset({"--results-dir", "--run-id", "--no-report"})

# (flag, dest, is a switch) of every harness option `bench run` offers and passes on.
HARNESS_OPTIONS: tuple[tuple[str, str, bool], ...] = tuple(
    (action.option_strings[0], action.dest, action.nargs == 0)
    for action in _PLUGIN._actions
    if action.option_strings and action.option_strings[0] not in FIXED_OPTIONS
)

# Where `bench run` says more than the plugin's own help.
_HELP = {"--release": "release label; results go to REPORTS/LABEL/RUN-ID/ (default unlabelled)"}


@dataclass(frozen=True)
class RunOptions:
    """Everything `bench run` needs, validated."""

    config: HarnessConfig  # the harness configuration the run will use (for budgets)
    # The harness options the user gave, as Locust arguments in the table's order.
    harness_args: tuple[str, ...]
    host: str | None
    release: str
    reports_dir: Path
    locustfile: Path
    processes: int | None = None
    expect_workers: int | None = None
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int | None = None  # None: 5557 for --expect-workers, free for --processes
    baseline: Path | None = None
    thresholds: Thresholds | None = None
    compare_thresholds: Path | None = None
    force: bool = False
    report: bool = True
    locust_args: tuple[str, ...] = ()
    repeat: int = 1  # runs of the whole ladder, back to back, into one result set

    @property
    def time_budget_s(self) -> float:
        """A generous upper bound on the Locust run: ladder + drain + start-up + shutdown.

        The watchdog stops Locust past this, so a hung run cannot hold a CI runner.
        """
        config = self.config
        waiting = 600.0 if self.expect_workers else 0.0  # external workers may start late
        return config.ladder.duration + config.drain_timeout + 15.0 + 120.0 + waiting


def add_arguments(p: argparse.ArgumentParser) -> None:
    target = p.add_argument_group("target")
    target.add_argument("--host", default=None, metavar="URL",
                        help="provider base URL (key from ANCHOR_API_KEY); default: start the "
                        "embedded simulator on loopback")  # fmt: skip
    harness = p.add_argument_group("harness (the Locust plugin's options, passed on as given)")
    for flag, dest, switch in HARNESS_OPTIONS:
        action = _PLUGIN._option_string_actions[flag]
        text = _HELP.get(flag, action.help)
        if switch:
            harness.add_argument(flag, dest=dest, action="store_true", default=None, help=text)
        else:
            harness.add_argument(
                flag, dest=dest, default=None, metavar=action.metavar, help=text
            )
    locust = p.add_argument_group("Locust")
    locust.add_argument("--processes", type=int, default=None, metavar="N",
                        help="Locust --processes: fork N worker processes (-1: one per core)")
    locust.add_argument("--expect-workers", type=int, default=None, metavar="N",
                        help="run as a Locust master and wait for N external workers")
    locust.add_argument("--master-bind-host", default="127.0.0.1", metavar="ADDR",
                        help="with --expect-workers: address workers connect to "
                        "(default %(default)s; 0.0.0.0 in a container)")  # fmt: skip
    locust.add_argument("--master-bind-port", type=int, default=None, metavar="PORT",
                        help=f"with --expect-workers: port (default {DEFAULT_MASTER_PORT}); "
                        "with --processes: where the forked workers meet the master "
                        "(default: a free loopback port)")  # fmt: skip
    locust.add_argument("--locust-arg", dest="locust_args", action="append", default=[],
                        metavar="=ARG", help="one more Locust argument, passed last and as "
                        "is, e.g. --locust-arg=--loglevel=DEBUG (repeatable)")
    locust.add_argument("--locustfile", default=str(DEFAULT_LOCUSTFILE), metavar="FILE",
                        help="locustfile (default: the harness's async_sessions.py)")
    out = p.add_argument_group("output and verdicts")
    out.add_argument("--reports-dir", default="reports", metavar="DIR",
                     help="root of the run folders (default %(default)s)")
    out.add_argument("--baseline", default=None, metavar="FILE|DIR",
                     help="compare with this baseline results file or folder after the run")
    out.add_argument("--thresholds", default=None, metavar="FILE",
                     help="SLO thresholds (TOML) checked after the run; a miss exits 3")
    out.add_argument("--compare-thresholds", default=None, metavar="FILE",
                     help="comparison thresholds passed to bench compare")
    out.add_argument("--force", action="store_true",
                     help="compare even when the runs are not comparable")
    out.add_argument("--no-report", dest="report", action="store_false",
                     help="skip the HTML/PNG report (results and verdicts still written)")
    out.add_argument("--repeat", default="1", metavar="N",
                     help="run the whole ladder N times back to back into one result set "
                     "(REPORTS/LABEL/SET-ID/result-set.json); the comparison then measures "
                     "the run-to-run noise instead of assuming it (default 1; docs/ci.md)")


def _usage(message: str) -> Exception:
    # Imported here, not at the top: bench.cli imports this package to register `run`.

    return UsageError(message)


def _given_harness_args(args: argparse.Namespace) -> tuple[str, ...]:
    given: list[str] = []
    for flag, dest, switch in HARNESS_OPTIONS:
        value = getattr(args, dest)
        if switch and value:
            given.append(flag)
        elif not switch and value is not None:
            # One "--flag=value" argument: a value such as "-rc1" is never taken for a flag.
            given.append(f"{flag}={value}")
    return tuple(given)


def _harness_namespace(harness_args: tuple[str, ...], host: str | None) -> argparse.Namespace:
    """The options the plugin will see: its defaults, the given values converted and
    checked by its own converters (a bad value is a usage error here)."""
    namespace = _PLUGIN.parse_args(list(harness_args))
    namespace.host = host
    return namespace


def _check_port_free(port: int) -> None:
    """Refuse a busy --processes port now: Locust's master would die on it while its
    forked workers kept retrying to connect for a minute."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            message = f"--master-bind-port {port}: not free on 127.0.0.1 ({exc.strerror})"
            raise _usage(message) from None


def _existing(path: str | None, flag: str) -> Path | None:
    if path is None:
        return None
    resolved = Path(path)
    if not resolved.exists():
        raise _usage(f"{flag}: {path} does not exist")
    return resolved


def options(args: argparse.Namespace, environ: Mapping[str, str]) -> RunOptions:
    """Validate `bench run`'s arguments (and the environment's key) into RunOptions."""
    harness_args = _given_harness_args(args)
    try:
        config = from_options(_harness_namespace(harness_args, args.host), environ)
    except ConfigError as exc:
        raise _usage(str(exc)) from None
    if config.host is None:
        _check_profile(config)
    if args.processes is not None and (args.processes == 0 or args.processes < -1):
        raise _usage(
            f"--processes must be at least 1 (or -1: one per core), got {args.processes}"
        )
    if args.expect_workers is not None:
        if args.expect_workers < 1:
            raise _usage(f"--expect-workers must be at least 1, got {args.expect_workers}")
        if args.processes is not None:
            raise _usage("--processes and --expect-workers exclude each other")
    if args.master_bind_port is not None and not 1 <= args.master_bind_port <= 65535:
        raise _usage(f"--master-bind-port must be 1..65535, got {args.master_bind_port}")
    if args.processes is not None and args.master_bind_port is not None:
        _check_port_free(args.master_bind_port)
    locustfile = Path(args.locustfile)
    if not locustfile.is_file():
        raise _usage(f"--locustfile: {locustfile} is not a file")
    repeat = _repeat(args.repeat)
    baseline = _existing(args.baseline, "--baseline")
    if baseline is not None:
        _check_baseline(baseline, config, force=bool(args.force))
    thresholds_path = _existing(args.thresholds, "--thresholds")
    thresholds = None
    if thresholds_path is not None:
        try:
            thresholds = load_thresholds(thresholds_path)
        except ThresholdsError as exc:
            raise _usage(str(exc)) from None
    return RunOptions(
        config=config,
        harness_args=harness_args,
        host=config.host,
        release=config.release,
        reports_dir=Path(args.reports_dir),
        locustfile=locustfile,
        processes=args.processes,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_bind_port=args.master_bind_port,
        baseline=baseline,
        thresholds=thresholds,
        compare_thresholds=_existing(args.compare_thresholds, "--compare-thresholds"),
        force=bool(args.force),
        report=bool(args.report),
        locust_args=tuple(args.locust_args),
        repeat=repeat,
    )


MAX_REPEAT = 100


def _repeat(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise _usage(f"--repeat must be a whole number of runs, got {short_repr(text)}") from None
    if not 1 <= value <= MAX_REPEAT:
        raise _usage(f"--repeat must be 1..{MAX_REPEAT}, got {value}")
    return value


def _check_baseline(path: Path, config: HarnessConfig, *, force: bool) -> None:
    """Refuse a baseline that cannot be read or compared *before* the run is spent.

    The comparison (bench.present.compare.inputs) refuses runs that differ in poll interval,
    session config or target kind; finding that out after a long ladder, or after
    paid sessions, would waste them.  `--force` skips the comparability part.
    """
    from bench.present.compare.errors import CompareError
    from bench.present.compare.inputs import COMPARABILITY_KEYS, load_side
    from bench.record.redact import redact_config

    try:
        side = load_side("baseline", path)
    except CompareError as exc:
        raise _usage(f"--baseline: {exc}") from None
    if force:
        return
    planned = {
        "poll interval": config.poll_interval,
        "target kind": "remote" if config.host else "simulator",
        "session config": redact_config(config.session_config),
    }
    for results in side.runs:
        found = {what: key(results) for what, key in COMPARABILITY_KEYS if what in planned}
        for what, value in planned.items():
            if found[what] != value:
                raise _usage(
                    f"--baseline: not comparable: {what} differs (baseline "
                    f"{short_repr(found[what])}, this run {short_repr(value)}); "
                    "match it or use --force"
                )


def _check_profile(config: HarnessConfig) -> None:
    """Load the simulator profile now: a bad name is a usage error before anything starts."""
    from bench.simulator.profile import ProfileError, load_profile

    try:
        load_profile(config.simulator_profile, time_scale=config.simulator_time_scale)
    except ProfileError as exc:
        raise _usage(f"--sim-profile: {exc}") from None


__all__ = ["FIXED_OPTIONS", "HARNESS_OPTIONS", "RunOptions", "add_arguments", "options"]
