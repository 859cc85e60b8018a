"""Command line: `bench <subcommand>`; each subcommand is a plain function."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from bench import run as _run
from bench.core.errors import UsageError
from bench.core.text import one_line
from bench.present.compare import command as _compare
from bench.present.report import command as _report
from bench.run import gather as _gather

if TYPE_CHECKING:
    from bench.simulator.server import ServerOptions

DEFAULT_API_KEY_ENV = "BENCH_SIMULATOR_API_KEY"


class _Parser(argparse.ArgumentParser):
    # argparse would print its own usage blurb and exit; route it through main's one
    # error path instead, so every user error looks the same.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Command:
    """One subcommand: its arguments, how they become validated options, and its run function."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    options: Callable[[argparse.Namespace, Mapping[str, str]], Any]
    run: Callable[[Any], int]


# ---------------------------------------------------------------------- simulate


def _simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default %(default)s)")
    p.add_argument("--port", type=int, default=0, metavar="N",
                   help="port; 0 picks a free one (default)")
    p.add_argument("--profile", default="default", metavar="NAME|PATH",
                   help="bundled profile name or .toml path (default %(default)s)")
    p.add_argument("--time-scale", type=float, default=None, metavar="F",
                   help="multiply every simulated duration by F (overrides the profile)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the model and fault draws (overrides the profile)")
    p.add_argument("--truth", action="store_true", help="serve /_sim/* admin endpoints")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the process that started this one exits")
    p.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        metavar="NAME",
        help="environment variable holding the accepted API key (default %(default)s); "
        "when unset the key is sim-local-key",
    )


def _loopback_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"  # one address, so the announced URL is the bound one
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise UsageError(f"--host {host} is not loopback; the simulator only binds loopback")
    return str(address)


def simulate_options(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerOptions:
    """Validated ServerOptions from `bench simulate`'s arguments and the environment."""
    from bench.simulator.profile import ProfileError, load_profile
    from bench.simulator.server import DEFAULT_API_KEY, ServerOptions

    host = _loopback_host(args.host)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    scale = args.time_scale
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--time-scale must be a number > 0, got {args.time_scale}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    try:
        profile = load_profile(args.profile, time_scale=args.time_scale, seed=args.seed)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    if profile.backend.kind == "chromium":
        from bench.simulator.browsers import EXECUTABLE_ENV, find_executable

        if find_executable(profile.backend) is None:
            raise UsageError(
                f"profile {profile.name!r} runs a real Chromium per session, and none was "
                f"found (apt-get install chromium, or set {EXECUTABLE_ENV})"
            )
    api_key = environ.get(args.api_key_env)
    if api_key is None:
        api_key = DEFAULT_API_KEY
    elif not api_key:
        raise UsageError(f"environment variable {args.api_key_env} is set but empty")
    return ServerOptions(host=host, port=args.port, profile=profile, truth=args.truth,
                         api_key=api_key, exit_with_parent=args.exit_with_parent)


def simulate(options: ServerOptions) -> int:
    """Run the simulator until SIGTERM/SIGINT."""
    from bench.simulator.server import run

    try:
        return run(options)
    except OSError as exc:  # e.g. the port is taken
        raise UsageError(f"cannot serve on {options.host}:{options.port}: {exc.strerror}") from None


COMMANDS: dict[str, Command] = {
    "simulate": Command(
        help="run the embedded API simulator on loopback",
        add_arguments=_simulate_arguments,
        options=simulate_options,
        run=simulate,
    ),
    "report": Command(
        help=_report.HELP,
        add_arguments=_report.add_arguments,
        options=_report.options,
        run=_report.run,
    ),
    "compare": Command(
        help="compare a candidate's results with a baseline's (exit 1 on a regression)",
        add_arguments=_compare.add_arguments,
        options=_compare.options,
        run=_compare.run,
    ),
    "run": Command(
        help="a whole headless benchmark: Locust run, results, report, SLO gates, comparison",
        add_arguments=_run.add_arguments,
        options=_run.options,
        run=_run.run,
    ),
    "gather": Command(
        help=_gather.HELP,
        add_arguments=_gather.add_arguments,
        options=_gather.options,
        run=_gather.run,
    ),
}


# ---------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """parse -> validated options -> run; the one place a user error becomes `Error: ...`."""
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        command = COMMANDS[args.command]
        options = command.options(args, os.environ if environ is None else environ)
        return command.run(options)
    except UsageError as exc:
        # One line whatever the user typed: a line break inside an argument stays visible.
        print(f"Error: {one_line(str(exc))}", file=sys.stderr)
        return 2
