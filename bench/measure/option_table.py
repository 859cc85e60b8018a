"""The harness's command-line options: one table for the Locust plugin and `bench run`.

No Locust import here, so `bench run` can read the same table (names, defaults,
checks, help) without the monkey-patching that importing Locust does.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.core.arrivals import CONSTANT, KINDS, ArrivalError, parse_rates
from bench.core.durations import Seconds
from bench.core.ladder import LadderError, parse_ladder
from bench.measure.harness_config import ConfigError, check_run_id, integer, number, seconds

DEFAULT_CLIENT_TIMEOUT = 10.0  # seconds; --client-timeout


def _checked(check: Any) -> Any:
    """An argparse type that turns our one-line errors into argparse's (exit code 2)."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except (ConfigError, LadderError, ArrivalError) as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    convert.__name__ = getattr(check, "__name__", "value")
    return convert


def _number(name: str, *, zero_ok: bool = False) -> Any:
    """A number > 0 (>= 0 with zero_ok): seconds, a time scale or a fraction."""
    return _checked(lambda text: number(name, text, minimum=0, strict=not zero_ok))


def _seconds(name: str, *, zero_ok: bool = False) -> Any:
    """A duration > 0 (>= 0 with zero_ok): plain seconds or Locust's forms (30s, 2m, 1h30m)."""
    return _checked(lambda text: Seconds(seconds(name, text, minimum=0, strict=not zero_ok)))


def _integer(name: str, minimum: int) -> Any:
    return _checked(lambda text: integer(name, text, minimum=minimum))


def _ladder(text: str) -> str:
    return ",".join(map(str, parse_ladder(text)))


def _rates(text: str) -> str:
    return ",".join(f"{rate:g}" for rate in parse_rates(text)) if str(text).strip() else ""


def _supports_env_vars(parser: Any) -> bool:
    """Locust's parser (configargparse) reads env_var=; `bench run`'s plain argparse does not."""
    try:
        import configargparse
    except ImportError:  # pragma: no cover - a dependency of Locust
        return False
    return isinstance(parser, configargparse.ArgumentParser)


def add_options(parser: Any) -> None:
    """Harness options; all show in the web UI (Locust's default) and work in --config files.

    `bench run` builds its harness options from this same table (bench/run/arguments.py).
    """
    env_vars = _supports_env_vars(parser)

    def add(flag: str, **kwargs: Any) -> None:
        if env_vars:
            # As Locust's own options: --poll-interval is also LOCUST_POLL_INTERVAL.
            kwargs["env_var"] = "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag, **kwargs)

    add("--poll-interval", metavar="S", type=_seconds("poll-interval"), default=Seconds(0.25),
        help="Seconds between status polls of one journey (default 0.25).")
    add("--ladder", metavar="N,N,...", type=_checked(_ladder), default="1,2,4,8",
        help="Concurrency steps, e.g. 1,2,4,8,16 (default 1,2,4,8).")
    add("--step-time", metavar="S", type=_seconds("step-time"), default=Seconds(30.0),
        help="Seconds each ladder step is held (default 30).")
    add("--settle", metavar="S", type=_seconds("settle", zero_ok=True), default=Seconds(5.0),
        help="Seconds at the start of each step whose journeys count as warm-up (default 5).")
    add("--ready-timeout", metavar="S", type=_seconds("ready-timeout"), default=Seconds(60.0),
        help="Seconds a journey may take from create to ready (default 60).")
    add("--session-config", metavar="FILE", default="",
        help="JSON file with the create body (default: the API doc's example).")
    add("--hold", metavar="S", type=_seconds("hold", zero_ok=True), default=Seconds(0.0),
        help="Seconds a ready session is kept before it is ended (default 0).")
    add("--max-sessions", metavar="N", type=_integer("max-sessions", 0), default=0,
        help="Cap on sessions created by the run (0: no cap; required for a non-loopback "
        "--host).")
    add("--release", metavar="LABEL", default="unlabelled",
        help="Release label stored with the results.")
    add("--results-dir", metavar="DIR", default="",
        help="Where results go (default reports/<run-id>/).")
    add("--sim-profile", metavar="NAME|FILE", default="default",
        help="Embedded simulator profile when no --host is given: default, fast, flaky or a file.")
    add("--sim-time-scale", metavar="F", type=_number("sim-time-scale", zero_ok=True),
        default=0.0, help="Embedded simulator time scale (0: the profile's own).")
    add("--max-poll-errors", metavar="N", type=_integer("max-poll-errors", 1), default=5,
        help="Consecutive failed polls before a journey ends in poll_error (default 5).")
    add("--protocol-error-threshold", metavar="F",
        type=_number("protocol-error-threshold", zero_ok=True), default=0.01,
        help="Fraction of protocol-error journeys above which the run is broken (default 0.01).")
    add("--journey-log", action="store_true", default=False,
        help="Also write every journey's estimates to journeys.jsonl.")
    add("--client-timeout", metavar="S", type=_seconds("client-timeout"),
        default=Seconds(DEFAULT_CLIENT_TIMEOUT),
        help="Seconds the load client waits for any answer before the call counts as failed "
        f"(default {DEFAULT_CLIENT_TIMEOUT:g}).")
    add("--arrival-rate", metavar="R,R,...", type=_checked(_rates), default="",
        help="Open model: sessions per second offered in each step (e.g. 0.5,1,2,4), whatever "
        "the earlier journeys are doing; replaces --ladder's concurrency levels.")
    add("--arrivals", metavar="KIND", choices=KINDS, default=CONSTANT,
        help="Open model: arrivals evenly spaced (constant, default) or a Poisson process.")
    add("--max-in-flight", metavar="N", type=_integer("max-in-flight", 1), default=100,
        help="Open model: journeys in flight at most; an arrival finding them all busy is "
        "counted as dropped, never delayed (default 100).")
    add("--cdp-check", action="store_true", default=False,
        help="After ready, open the session's cdp_url (CDP over websocket) and send "
        "Browser.getVersion: is ready usable?")
    add("--cdp-navigate", metavar="URL", default="",
        help="With the check, also open a page and load URL (a path like /_sim/page is "
        "taken from the target host); implies --cdp-check.")
    add("--cdp-timeout", metavar="S", type=_seconds("cdp-timeout"), default=Seconds(15.0),
        help="Seconds the whole connect check may take (default 15).")
    add("--insecure", action="store_true", default=False,
        help="Do not verify the target's TLS certificate (the key may then reach an impostor).")
    add("--ca-bundle", metavar="FILE", default="",
        help="PEM file of the CA certificates to trust for the target (a private CA).")
    add("--allow-http", action="store_true", default=False,
        help="Allow plain http:// to a host that is not loopback (the key travels in clear).")
    add("--run-id", metavar="ID", type=_checked(check_run_id), default=None,
        help="Id of the (first) run: names the results (default: UTC time + random suffix).")
    add("--no-report", action="store_true", default=False,
        help="Do not build the report (report.html, plots, summary.md) at the end of the run.")
    add("--progress-interval", metavar="S", type=_seconds("progress-interval", zero_ok=True),
        default=Seconds(10.0),
        help="Seconds between progress lines on the log (default 10; 0: none).")  # fmt: skip


__all__ = ["DEFAULT_CLIENT_TIMEOUT", "add_options"]
