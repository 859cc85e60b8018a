"""The harness's options: validated once into a frozen HarnessConfig (pure; no Locust import)."""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.core.arrivals import CONSTANT, KINDS, ArrivalError, parse_rates
from bench.core.durations import DurationError, parse_duration
from bench.core.ladder import Ladder, LadderError, parse_ladder
from bench.measure.tls import Tls, check_ca_pem

API_KEY_ENV = "ANCHOR_API_KEY"

# The API doc's example browser configuration: what a default journey asks for.
DEFAULT_SESSION_CONFIG: dict[str, Any] = {
    "session": {
        "proxy": {"active": True},
        "timeout": {"idle_timeout": 5, "max_duration": 25},
        "recording": {"active": True},
    }
}

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class ConfigError(ValueError):
    """A bad option value; the message is one line fit for the user (exit code 2)."""


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_run_id(text: str) -> str:
    """A run id given by the user: it names a folder and a session tag, so keep it plain."""
    if not _RUN_ID.fullmatch(text):
        raise ConfigError(
            f"--run-id: {text[:70]!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


@dataclass(frozen=True)
class OpenModel:
    """--arrival-rate: journeys start on schedule, at most max_in_flight at a time."""

    rates: tuple[float, ...]
    arrivals: str
    max_in_flight: int

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": "open", "arrivals": self.arrivals, "max_in_flight": self.max_in_flight,
            "arrival_rates": list(self.rates),
        }  # fmt: skip


@dataclass(frozen=True)
class CdpCheck:
    """--cdp-check / --cdp-navigate: after ready, is the session usable over CDP?"""

    navigate: str | None  # a URL, or a path taken from the target host
    timeout: float


@dataclass(frozen=True)
class HarnessConfig:
    host: str | None  # None: start the embedded simulator
    poll_interval: float
    ladder: Ladder
    ready_timeout: float
    session_config: Mapping[str, Any]
    session_config_source: str
    hold: float
    max_sessions: int | None
    release: str
    results_dir: str | None
    simulator_profile: str
    simulator_time_scale: float | None
    max_poll_errors: int
    protocol_error_threshold: float
    journey_log: bool = False
    progress_interval: float = 10.0  # seconds between progress lines; 0 = none
    report: bool = True  # build the report into the results folder at the end
    tls: Tls = field(default_factory=Tls)
    ca_bundle: str | None = None  # where tls.ca_pem came from (for the results)
    open_model: OpenModel | None = None  # None: the closed model (--ladder's users)
    cdp: CdpCheck | None = None  # None: no connect check after ready
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def drain_timeout(self) -> float:
        """How long in-flight journeys may run on once the ladder ends (bounded)."""
        return self.ready_timeout + self.hold + 10.0


def is_loopback(host_url: str) -> bool:
    hostname = urlsplit(host_url).hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def number(name: str, value: Any, *, minimum: float, strict: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{name}: expected a number, got {value!r}") from None
    return _in_range(name, value, number, minimum=minimum, strict=strict)


def seconds(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> float:
    """A duration in seconds: plain (``0.25``) or as Locust writes it (``30s``, ``1h30m``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        try:
            number = parse_duration(value)
        except DurationError as exc:
            raise ConfigError(f"--{name}: {exc}") from None
    return _in_range(name, value, number, minimum=minimum, strict=strict)


def _in_range(name: str, value: Any, number: float, *, minimum: float, strict: bool) -> float:
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"--{name}: expected a finite number, got {value!r}")
    if number < minimum or (strict and number == minimum):
        relation = "greater than" if strict else "at least"
        raise ConfigError(f"--{name}: must be {relation} {minimum:g}, got {number:g}")
    return number


def integer(name: str, value: Any, *, minimum: int) -> int:
    """A whole number >= minimum; "1.5" is refused, never truncated to 1."""
    whole = number(name, value, minimum=minimum, strict=False)
    if whole != int(whole):
        raise ConfigError(f"--{name}: expected an integer, got {value!r}")
    return int(whole)


def load_session_config(path: str | None) -> tuple[dict[str, Any], str]:
    """Read the JSON create body from `path`, or the API doc's example when None."""
    if not path:
        return dict(DEFAULT_SESSION_CONFIG), "default (API doc example)"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--session-config: cannot read {path}: {exc.strerror}") from None
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"--session-config: {path} is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError(f"--session-config: {path} must hold a JSON object")
    session = body.get("session", {})
    if not isinstance(session, dict):
        raise ConfigError(f"--session-config: {path}: 'session' must be an object")
    tags = session.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"--session-config: {path}: 'session.tags' must be a list of strings")
    return body, path


def normalise_host(host: str) -> str:
    """The base URL every path is appended to: scheme, host, port, path prefix, no end slash.

    Done once, for the load path and the clean-up alike: `https://api.example.com/`
    would otherwise give `//v1/...` on one and `/v1/...` on the other.
    """
    try:
        parts = urlsplit(host)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # e.g. an unclosed or invalid IPv6 literal, a bad port
        valid = False
    if not valid:
        raise ConfigError(f"--host: expected an http(s) URL, got {host!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "--host: a user name or password in the URL is not used (the key comes from "
            f"{API_KEY_ENV}); give the URL without it"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"--host: the URL must not carry a query or fragment, got {host!r}")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def proxy_for(host: str, environ: Mapping[str, str]) -> str | None:
    """The proxy the environment names for `host` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY)."""
    parts = urlsplit(host)

    def var(name: str) -> str | None:
        # urllib's rule: the lower-case variable wins over the upper-case one.
        return environ.get(name.lower()) or environ.get(name.upper()) or None

    proxy = var(f"{parts.scheme}_proxy") or var("all_proxy")
    if proxy is None:
        return None
    no_proxy = var("no_proxy")
    if no_proxy and urllib.request.proxy_bypass_environment(
        parts.netloc, proxies={"no": no_proxy}
    ):
        return None
    return proxy


def _open_model(options: Any) -> OpenModel | None:
    text = str(getattr(options, "arrival_rate", None) or "").strip()
    if not text:
        return None
    try:
        rates = parse_rates(text)
    except ArrivalError as exc:
        raise ConfigError(f"--arrival-rate: {exc}") from None
    arrivals = str(getattr(options, "arrivals", None) or CONSTANT)
    if arrivals not in KINDS:
        raise ConfigError(f"--arrivals: expected one of {', '.join(KINDS)}, got {arrivals!r}")
    cap = integer("max-in-flight", getattr(options, "max_in_flight", 100), minimum=1)
    return OpenModel(rates, arrivals, cap)


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def load_ca_bundle(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a PEM file"
        raise ConfigError(f"--ca-bundle: cannot read {path}: {reason}") from None
    problem = check_ca_pem(text)
    if problem is not None:
        raise ConfigError(f"--ca-bundle: {path}: {problem}")
    return text


def from_options(options: Any, environ: Mapping[str, str] = os.environ) -> HarnessConfig:
    """Validate Locust's parsed options (typed, or strings from the web UI) into a config."""
    host = (getattr(options, "host", None) or "").strip() or None
    if host is not None:
        host = normalise_host(host)
        remote = not is_loopback(host)
        if remote and host.startswith("http://") and not getattr(options, "allow_http", False):
            raise ConfigError(
                f"--host {host}: plain http to a host that is not loopback would send the API "
                "key in clear text; use https (or --allow-http if you really mean it)"
            )
        proxy = proxy_for(host, environ) if remote else None
        if proxy is not None:
            raise ConfigError(
                f"--host {host}: the environment names a proxy for it, and the harness does "
                "not route its calls through proxies (the load client and the clean-up must "
                "take one route): unset the proxy variables or add the host to NO_PROXY"
            )
    open_model = _open_model(options)
    try:
        levels = (
            tuple(open_model.max_in_flight for _ in open_model.rates)
            if open_model is not None
            else parse_ladder(options.ladder)
        )
    except LadderError as exc:
        raise ConfigError(str(exc)) from None
    step_time = seconds("step-time", options.step_time, minimum=0)
    settle = seconds("settle", options.settle, minimum=0, strict=False)
    try:
        ladder = Ladder(levels, step_time, settle)
    except LadderError as exc:
        # Levels and step time are checked above: what is left is the settle time.
        raise ConfigError(f"--settle: {exc}") from None

    max_sessions_raw = getattr(options, "max_sessions", None)
    max_sessions = None
    if max_sessions_raw not in (None, "", 0, "0"):
        max_sessions = integer("max-sessions", max_sessions_raw, minimum=1)
    if host is not None and not is_loopback(host) and max_sessions is None:
        raise ConfigError(
            f"--host {host} is not loopback: give --max-sessions N to cap the paid "
            "sessions this run may create"
        )
    if host is not None and not environ.get(API_KEY_ENV):
        raise ConfigError(f"--host given but {API_KEY_ENV} is not set in the environment")

    release = str(getattr(options, "release", "") or "unlabelled")
    if not _LABEL.fullmatch(release):
        raise ConfigError(
            f"--release: {release!r} must be 1-64 characters of letters, digits, '.', '_', '+', '-'"
        )

    body, source = load_session_config(getattr(options, "session_config", None))
    time_scale_raw = getattr(options, "sim_time_scale", None)
    time_scale = (
        None
        if time_scale_raw in (None, "", 0, "0")
        else number("sim-time-scale", time_scale_raw, minimum=0)
    )
    threshold = number(
        "protocol-error-threshold",
        getattr(options, "protocol_error_threshold", 0.01),
        minimum=0,
        strict=False,
    )
    if threshold > 1:
        raise ConfigError(f"--protocol-error-threshold: a fraction 0..1, got {threshold:g}")
    ca_bundle = str(getattr(options, "ca_bundle", None) or "") or None
    insecure = bool(getattr(options, "insecure", False))
    if ca_bundle and insecure:
        raise ConfigError("--ca-bundle and --insecure exclude each other")
    tls = Tls(verify=not insecure, ca_pem=load_ca_bundle(ca_bundle) if ca_bundle else None)
    navigate = str(getattr(options, "cdp_navigate", None) or "").strip() or None
    if navigate is not None and not (navigate.startswith("/") or _is_http_url(navigate)):
        raise ConfigError(
            f"--cdp-navigate: expected an http(s) URL or a path starting with '/', got "
            f"{navigate[:80]!r}"
        )
    cdp = None
    if navigate is not None or getattr(options, "cdp_check", False):
        cdp = CdpCheck(
            navigate, seconds("cdp-timeout", getattr(options, "cdp_timeout", 15.0), minimum=0)
        )
    return HarnessConfig(
        open_model=open_model,
        cdp=cdp,
        tls=tls,
        ca_bundle=ca_bundle,
        host=host,
        poll_interval=seconds("poll-interval", options.poll_interval, minimum=0),
        ladder=ladder,
        ready_timeout=seconds("ready-timeout", options.ready_timeout, minimum=0),
        session_config=body,
        session_config_source=source,
        hold=seconds("hold", getattr(options, "hold", 0), minimum=0, strict=False),
        max_sessions=max_sessions,
        release=release,
        results_dir=(getattr(options, "results_dir", None) or None),
        simulator_profile=str(getattr(options, "sim_profile", None) or "default"),
        simulator_time_scale=time_scale,
        max_poll_errors=integer(
            "max-poll-errors", getattr(options, "max_poll_errors", 5), minimum=1
        ),
        protocol_error_threshold=threshold,
        journey_log=bool(getattr(options, "journey_log", False)),
        report=not bool(getattr(options, "no_report", False)),
        progress_interval=seconds(
            "progress-interval", getattr(options, "progress_interval", 10.0), minimum=0,
            strict=False,
        ),
    )
