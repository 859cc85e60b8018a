"""Simulator profiles: strictly validated TOML describing capacity, timing, failures, faults."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.simulator.distributions import (
    Distribution,
    DistributionError,
    Fixed,
    ShiftedLogNormal,
    Uniform,
    parse_distribution,
)

ENDPOINTS = ("create", "status", "get_session", "delete", "list", "delete_all", "billing")
# Fault tables also take "cdp": the sessions' CDP websocket (see CdpParams).  It is kept out
# of ENDPOINTS because redirects and `[faults.all]` are about the HTTP API only.
CDP = "cdp"
FAULT_ENDPOINTS = (*ENDPOINTS, CDP)
BACKENDS = ("model", "chromium")

# Features a create body can switch on; configuring time depends on them.
FEATURES = (
    "proxy",
    "recording",
    "adblock",
    "popup_blocker",
    "captcha_solver",
    "extra_stealth",
    "headless",
    "profile",
    "extensions",
    "integrations",
    "identities",
)


class ProfileError(ValueError):
    """A profile cannot be found or is invalid; the message is one line naming the key path."""


@dataclass(frozen=True)
class EndpointFaults:
    """Per-endpoint fault injection rates (probabilities 0..1), applied by the HTTP layer."""

    rate_429: float = 0.0
    retry_after_s: float = 1.0  # unscaled seconds; HTTP layer multiplies by time_scale
    rate_5xx: float = 0.0
    rate_malformed: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 5.0  # unscaled seconds
    # Status anomalies, "status" endpoint only: per-request probabilities, drawn when a
    # request is first polled (see faults.StatusFaults); at most one kind per request.
    rate_unknown_status: float = 0.0  # a status outside the spec while the request is live
    rate_backwards: float = 0.0  # one answer with an earlier phase than already answered
    rate_completed: float = 0.0  # `completed` without ever `ready` (really ends the request)


@dataclass(frozen=True)
class CapacityParams:
    """Browser slots and the queue in front of them."""

    max_concurrent_browsers: int = 50  # -1 = unlimited (never queues)
    max_queue: int = 500  # pending requests at which create answers 429
    queue_retry_after_s: float = 2.0  # Retry-After of that 429, unscaled


@dataclass(frozen=True)
class RateLimitParams:
    """Token bucket on creates; rates are per unscaled second (time_scale compresses time)."""

    creates_per_s: float = 0.0  # 0 = no rate limit
    burst: int = 1


# Defaults when a profile omits a phase (the default profile's values, roughly);
# distributions are frozen, so sharing one instance is safe.
_DISPATCH = Uniform(0.01, 0.04)
_PROVISIONING = ShiftedLogNormal(0.88, 0.50, 0.276)
_CONFIGURING = ShiftedLogNormal(0.10, 0.04, 0.4)


@dataclass(frozen=True)
class PhaseParams:
    """Phase duration distributions (unscaled seconds) and the load-dependent stretch."""

    dispatch: Distribution = _DISPATCH
    provisioning: Distribution = _PROVISIONING
    configuring: Distribution = _CONFIGURING
    # Extra configuring time per active feature; a feature absent here costs nothing.
    features: Mapping[str, Distribution] = field(default_factory=lambda: MappingProxyType({}))
    provisioning_scale: float = 1.0  # multiplies whole provisioning time ("30% slower" = 1.3)
    # The part of a provisioning draw above its floor is stretched by
    # 1 + contention * (others provisioning) + utilisation_stretch * utilisation**2.
    contention: float = 0.0
    utilisation_stretch: float = 0.0


@dataclass(frozen=True)
class SlowdownParams:
    """Changes injected on purpose, to measure what `bench compare` finds (benchmarks/
    compare_calibration.py).  The defaults change nothing.

    A request that starts provisioning while `min_in_flight`..`max_in_flight` requests
    (itself included; queued or holding a slot) are in the service has its provisioning
    multiplied by `provisioning_scale`: at a concurrency ladder with no hold, in flight
    is the ladder level, so this slows one level only.  Independently, the part of a
    provisioning draw above the distribution's `tail_quantile` is stretched by
    `tail_stretch` (the median stays, the tail moves).
    """

    provisioning_scale: float = 1.0
    min_in_flight: int = 0
    max_in_flight: int = -1  # -1: no upper limit
    tail_quantile: float = 1.0
    tail_stretch: float = 1.0

    def scale_for(self, in_flight: int) -> float:
        if in_flight < self.min_in_flight:
            return 1.0
        if self.max_in_flight >= 0 and in_flight > self.max_in_flight:
            return 1.0
        return self.provisioning_scale


@dataclass(frozen=True)
class FailureParams:
    """Failures that rise with load."""

    # P(provisioning fails) = base + slope * utilisation ** exponent, utilisation
    # = busy slots / capacity when provisioning starts.
    provision_base: float = 0.0
    provision_slope: float = 0.0
    provision_exponent: float = 2.0
    # Create answers 400 "Failed to run browser" / 500 "No browser available"
    # with P = max * x ** exponent, x = clamp((pressure - threshold) / (1 -
    # threshold), 0, 1), pressure = (busy slots + queued) / capacity.
    capacity_threshold: float = 0.8
    capacity_400_max: float = 0.0
    capacity_500_max: float = 0.0
    capacity_exponent: float = 2.0


@dataclass(frozen=True)
class SessionParams:
    """session.timeout defaults when a create body omits them (minutes; -1 disables)."""

    idle_timeout_min: float = 5.0
    max_duration_min: float = 20.0


@dataclass(frozen=True)
class BillingParams:
    """What GET /v1/billing reports, and the 402/403 triggers."""

    tier: str = "growth"
    credits: float = 1_000_000.0  # starting balance; 402 once it cannot pay a session
    included_credits: float = 1_000_000.0
    gifts_balance: float = 0.0
    credits_per_session: float = 1.0  # charged when a create is accepted
    cost_limit: float | None = None  # 403 once credits_used would exceed it
    cost_limit_exceeded: bool = False  # force 403 on every create


@dataclass(frozen=True)
class AnomalyParams:
    """Protocol anomalies for fault-matrix tests; each rate is a per-request probability."""

    unknown_status_rate: float = 0.0  # a window during provisioning with a status outside the spec
    unknown_status_value: str = "initializing"
    backwards_rate: float = 0.0  # ready, then processing for window_s, then ready again
    completed_without_ready_rate: float = 0.0  # completed straight from configuring
    window_s: float = 1.0  # unscaled


# Dialect choices: the readings of the spec and the API doc a provider may serve.
SPEC_PHASES = ("queued", "provisioning", "configuring", "ready")
LIST_PAGING = ("none", "truncate", "page", "cursor")
DELETE_STATUSES = (200, 204)  # DELETE that ends a live session
DELETE_ENDED_STATUSES = (200, 204, 401, 404, 410)  # DELETE of an already ended session
DELETE_UNKNOWN_STATUSES = (401, 404, 410)  # DELETE of an id the key never had
STATUS_AFTER_END = ("completed", "ready", "404")
RETRY_AFTER_FORMATS = ("seconds", "decimal", "http_date")
REDIRECT_CODES = (301, 302, 303, 307, 308)
REDIRECT_TARGETS = ("same_origin", "other_origin")
CREATE_STATUSES = (200, 201, 202)


@dataclass(frozen=True)
class DialectParams:
    """How the API reads where the spec and the doc leave room; defaults are today's answers.

    Durations are unscaled seconds (time_scale multiplies them); rates are probabilities
    per answer.  bench/simulator/dialect.py applies them; profiles/default.toml documents
    each key.
    """

    # Session status words, everywhere a session shows (status, GET, list).
    live_session_status: str = "running"  # the doc's example word (outside the spec enum)
    ended_session_status: str = "ended"
    # GET /v1/sessions/all/status
    list_ended_sessions: bool = False  # ended sessions stay in the list (with the ended word)
    list_paging: str = "none"  # none | truncate | page | cursor
    list_page_size: int = 100
    ignore_tag_filter: bool = False  # answer every session of the key whatever `tags` says
    foreign_sessions: int = 0  # live sessions of the key that no client of this run created
    foreign_tags: tuple[str, ...] = ("foreign",)
    # DELETE /v1/sessions/{id}
    delete_status: int = 200  # ends a live session: 200 SuccessResponse or 204 empty
    delete_ended_status: int = 200  # the session had already ended
    delete_unknown_status: int = 401  # the key never had this id (the spec's answer)
    delete_500_rate: float = 0.0  # ends the session for real, but answers 500
    # GET /v1/sessions/async/{id}/status
    phase_ready_lead_s: float = 0.0  # phase `ready` shown this long before status `ready`
    no_progress_rate: float = 0.0  # answers without `progress` (1.0: never sends it)
    unknown_phase_rate: float = 0.0  # answers whose phase is one of unknown_phases
    unknown_phases: tuple[str, ...] = ("warming", "starting")
    session_lag_s: float = 0.0  # `session` appears this long after status `ready`
    status_after_end: str = "completed"  # completed | ready | 404
    # Retry-After on 429 (and on 503 with server_error_retry_after)
    retry_after_format: str = "seconds"  # seconds | decimal | http_date
    server_error_retry_after: bool = False  # injected 5xx answer 503 + Retry-After
    # Redirects, decided before anything else (a redirected request reaches nothing)
    redirect_rate: float = 0.0
    redirect_endpoints: tuple[str, ...] = ENDPOINTS
    redirect_codes: tuple[int, ...] = (301, 302, 307, 308)
    redirect_targets: tuple[str, ...] = ("same_origin",)
    # Elsewhere
    create_status: int = 200  # POST /v1/sessions/async: 200 (spec), 201 or 202
    extra_fields: bool = False  # unknown extra fields in every JSON object served


# CDP latencies, calibrated on the measured session_connect_ms and page_goto_ms
# (bench/calibration/fit.py --cdp; profiles/default.toml gives the fit).
_CDP_HANDSHAKE = ShiftedLogNormal(0.081, 0.052, 0.562, 5.0)
_CDP_COMMAND = Uniform(0.015, 0.035)
_CDP_NAVIGATE = ShiftedLogNormal(0.0, 0.112, 0.597, 10.0)


@dataclass(frozen=True)
class CdpParams:
    """The CDP websocket each ready session serves at its cdp_url (modelled backend).

    Durations are unscaled seconds (time_scale multiplies them).  Faults come from the
    fault table's `cdp` entry (`[faults.cdp]`, PUT /_sim/faults): rate_429 / rate_5xx
    refuse the upgrade with that status, rate_drop closes the socket before an answer,
    rate_malformed cuts an answer in half, rate_slow delays an upgrade or answer by slow_s.
    """

    enabled: bool = True
    handshake: Distribution = _CDP_HANDSHAKE  # upgrade request received -> 101 sent
    first_command: Distribution = _CDP_COMMAND  # a connection's first command: in -> answer
    command: Distribution = _CDP_COMMAND  # every later command: received -> answered
    navigate: Distribution = _CDP_NAVIGATE  # Page.navigate answered -> Page.loadEventFired
    product: str = "HeadlessChrome/156.0.0.0"  # Browser.getVersion's product


@dataclass(frozen=True)
class BackendParams:
    """What a session's browser is: the model's (simulated CDP) or a real headless Chromium.

    With `chromium`, provisioning ends when a real browser launched for the request answers
    on its DevTools port (real seconds, never scaled), and its DevTools websocket is the
    session's cdp_url; the browser is killed when the session ends or the simulator stops.
    """

    kind: str = "model"  # model | chromium
    executable: str = ""  # "" = $BENCH_CHROMIUM, /usr/lib/chromium/chromium, chromium on PATH
    launch_timeout_s: float = 30.0  # real seconds until the browser must answer, else failed
    extra_args: tuple[str, ...] = ()  # appended to the fixed, loopback-only flags


@dataclass(frozen=True)
class Profile:
    name: str
    time_scale: float
    seed: int | None
    faults: Mapping[str, EndpointFaults]
    description: str = ""
    capacity: CapacityParams = CapacityParams()
    rate_limit: RateLimitParams = RateLimitParams()
    phases: PhaseParams = PhaseParams()
    failures: FailureParams = FailureParams()
    sessions: SessionParams = SessionParams()
    billing: BillingParams = BillingParams()
    anomalies: AnomalyParams = AnomalyParams()
    dialect: DialectParams = DialectParams()
    cdp: CdpParams = CdpParams()
    backend: BackendParams = BackendParams()
    slowdown: SlowdownParams = SlowdownParams()


# --------------------------------------------------------------------------- loading


def available_profiles() -> list[str]:
    """Names of the profiles bundled in bench/simulator/profiles."""
    folder = resources.files("bench.simulator") / "profiles"
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def _looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path


def _read_raw(name_or_path: str, base_dir: Path | None) -> tuple[str, dict[str, Any], Path | None]:
    """(display name, parsed TOML, directory for relative `extends`) of a bundled name or a path."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {str(path)!r}: {exc.strerror}") from None
        label, folder = str(path), path.parent
    else:
        names = available_profiles()
        if name_or_path not in names:
            raise ProfileError(f"unknown profile {name_or_path!r} (available: {', '.join(names)})")
        entry = resources.files("bench.simulator") / "profiles" / f"{name_or_path}.toml"
        text = entry.read_text(encoding="utf-8")
        label, folder = name_or_path, None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {label!r}: invalid TOML: {exc}") from None
    return label, raw, folder


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child tables override base tables key by key (so `extends` only states differences).

    A distribution table (one with `dist`) is replaced whole: mixing a parent's
    lognormal keys into a child's `fixed` would make no sense.
    """
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and "dist" not in value and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(name_or_path: str, base_dir: Path | None, seen: tuple[str, ...]) -> dict[str, Any]:
    label, raw, folder = _read_raw(name_or_path, base_dir)
    if label in seen:
        raise ProfileError(f"profile {label!r}: extends cycle ({' -> '.join((*seen, label))})")
    parent = raw.pop("extends", None)
    if parent is None:
        raw.setdefault("name", Path(label).stem if _looks_like_path(label) else label)
        return raw
    if not isinstance(parent, str):
        raise ProfileError(f"profile {label!r}: extends: expected a string, got {parent!r}")
    merged = _merge(_resolve(parent, folder, (*seen, label)), raw)
    # The name is the child's own, never inherited.
    merged["name"] = raw.get("name", Path(label).stem if _looks_like_path(label) else label)
    return merged


class _Reader:
    """Consumes one TOML table; every getter checks type and range and names the key path."""

    def __init__(self, table: object, path: str, label: str) -> None:
        if not isinstance(table, dict):
            raise ProfileError(f"profile {label!r}: {path}: expected a table, got {table!r}")
        self.table = dict(table)
        self.path = path
        self.label = label

    def error(self, key: str, message: str) -> ProfileError:
        where = f"{self.path}.{key}" if self.path else key
        return ProfileError(f"profile {self.label!r}: {where}: {message}")

    def has(self, key: str) -> bool:
        return key in self.table

    def number(
        self, key: str, default: float, *, low: float = 0.0, high: float = math.inf
    ) -> float:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        if not math.isfinite(value) or not low <= value <= high:
            bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
            raise self.error(key, f"must be {bounds}, got {value!r}")
        return float(value)

    def rate(self, key: str, default: float = 0.0) -> float:
        return self.number(key, default, low=0.0, high=1.0)

    def integer(self, key: str, default: int, *, low: int) -> int:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if value < low:
            raise self.error(key, f"must be >= {low}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def string(self, key: str, default: str) -> str:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in options:
            raise self.error(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def code(self, key: str, default: int, options: tuple[int, ...]) -> int:
        value = self.integer(key, default, low=0)
        if value not in options:
            expected = ", ".join(str(o) for o in options)
            raise self.error(key, f"expected one of {expected}, got {value!r}")
        return value

    def strings(
        self, key: str, default: tuple[str, ...], options: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        """A non-empty list of strings (each one of `options` when given)."""
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a non-empty list of strings, got {value!r}")
        for item in value:
            if options is not None and item not in options:
                raise self.error(key, f"expected items among {', '.join(options)}, got {item!r}")
        return tuple(value)

    def codes(
        self, key: str, default: tuple[int, ...], options: tuple[int, ...]
    ) -> tuple[int, ...]:
        """A non-empty list of HTTP status codes, each one of `options`."""
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected a non-empty list of status codes, got {value!r}")
        for item in value:
            if isinstance(item, bool) or item not in options:
                expected = ", ".join(str(o) for o in options)
                raise self.error(key, f"expected items among {expected}, got {item!r}")
        return tuple(value)

    def timeout_minutes(self, key: str, default: float) -> float:
        value = self.number(key, default, low=-1.0)
        if value != -1 and value <= 0:
            raise self.error(key, f"must be > 0 or -1 (disabled), got {value!r}")
        return value

    def dist(self, key: str, default: Distribution) -> Distribution:
        if key not in self.table:
            return default
        where = f"{self.path}.{key}" if self.path else key
        try:
            return parse_distribution(self.table.pop(key), where)
        except DistributionError as exc:
            raise ProfileError(f"profile {self.label!r}: {exc}") from None

    def sub(self, key: str) -> _Reader:
        where = f"{self.path}.{key}" if self.path else key
        return _Reader(self.table.pop(key, {}), where, self.label)

    def done(self) -> None:
        for key in self.table:
            raise self.error(key, "unknown key")


def _faults(reader: _Reader) -> dict[str, EndpointFaults]:
    def one(r: _Reader, base: EndpointFaults, *, status: bool = False) -> EndpointFaults:
        if status:
            # Status anomalies make sense on the status endpoint only; elsewhere (and in
            # `[faults.all]`) they stay unread, so done() refuses them as unknown keys.
            base = dataclasses.replace(
                base,
                rate_unknown_status=r.rate("rate_unknown_status", base.rate_unknown_status),
                rate_backwards=r.rate("rate_backwards", base.rate_backwards),
                rate_completed=r.rate("rate_completed", base.rate_completed),
            )
        result = dataclasses.replace(
            base,
            rate_429=r.rate("rate_429", base.rate_429),
            retry_after_s=r.number("retry_after_s", base.retry_after_s),
            rate_5xx=r.rate("rate_5xx", base.rate_5xx),
            rate_malformed=r.rate("rate_malformed", base.rate_malformed),
            rate_drop=r.rate("rate_drop", base.rate_drop),
            rate_slow=r.rate("rate_slow", base.rate_slow),
            slow_s=r.number("slow_s", base.slow_s),
        )
        anomalies = result.rate_unknown_status + result.rate_backwards + result.rate_completed
        if anomalies > 1:
            raise r.error("rate_completed", "status anomaly rates must add up to <= 1")
        r.done()
        return result

    # `[faults.all]` is the default for every endpoint; per-endpoint tables override it.
    common = one(reader.sub("all"), EndpointFaults()) if reader.has("all") else None
    result: dict[str, EndpointFaults] = {}
    for endpoint in ENDPOINTS:
        base = common or EndpointFaults()
        if reader.has(endpoint):
            result[endpoint] = one(reader.sub(endpoint), base, status=endpoint == "status")
        elif common is not None:
            result[endpoint] = common
    # `[faults.all]` is about the HTTP API: CDP faults are only ever asked for by name.
    if reader.has(CDP):
        result[CDP] = one(reader.sub(CDP), EndpointFaults())
    for key in reader.table:
        expected = ", ".join(FAULT_ENDPOINTS)
        raise reader.error(key, f"unknown endpoint (expected all or one of {expected})")
    return result


def _build(raw: dict[str, Any], label: str) -> Profile:
    top = _Reader(raw, "", label)
    name = top.string("name", label)
    description = top.string("description", "")
    time_scale = top.number("time_scale", 1.0)
    if time_scale <= 0:
        raise top.error("time_scale", f"must be > 0, got {time_scale!r}")
    seed: int | None = None
    if top.has("seed"):
        seed = top.integer("seed", 0, low=0)

    r = top.sub("capacity")
    max_browsers = r.integer(
        "max_concurrent_browsers", CapacityParams.max_concurrent_browsers, low=-1
    )
    if max_browsers == 0:
        raise r.error("max_concurrent_browsers", "must be >= 1 or -1 (unlimited), got 0")
    capacity = CapacityParams(
        max_concurrent_browsers=max_browsers,
        max_queue=r.integer("max_queue", CapacityParams.max_queue, low=0),
        queue_retry_after_s=r.number("queue_retry_after_s", CapacityParams.queue_retry_after_s),
    )
    r.done()

    r = top.sub("rate_limit")
    rate_limit = RateLimitParams(
        creates_per_s=r.number("creates_per_s", RateLimitParams.creates_per_s),
        burst=r.integer("burst", RateLimitParams.burst, low=1),
    )
    r.done()

    r = top.sub("phases")
    d = PhaseParams()
    feature_reader = r.sub("features")
    features: dict[str, Distribution] = {}
    for key in list(feature_reader.table):
        if key not in FEATURES:
            expected = ", ".join(FEATURES)
            raise feature_reader.error(key, f"unknown feature (expected one of {expected})")
        features[key] = feature_reader.dist(key, Fixed(0.0))
    phases = PhaseParams(
        dispatch=r.dist("dispatch", d.dispatch),
        provisioning=r.dist("provisioning", d.provisioning),
        configuring=r.dist("configuring", d.configuring),
        features=MappingProxyType(features),
        provisioning_scale=r.number("provisioning_scale", d.provisioning_scale),
        contention=r.number("contention", d.contention),
        utilisation_stretch=r.number("utilisation_stretch", d.utilisation_stretch),
    )
    if phases.provisioning_scale <= 0:
        raise r.error("provisioning_scale", f"must be > 0, got {phases.provisioning_scale!r}")
    r.done()

    r = top.sub("failures")
    f = FailureParams()
    failures = FailureParams(
        provision_base=r.rate("provision_base", f.provision_base),
        provision_slope=r.rate("provision_slope", f.provision_slope),
        provision_exponent=r.number("provision_exponent", f.provision_exponent),
        capacity_threshold=r.number("capacity_threshold", f.capacity_threshold, high=0.999),
        capacity_400_max=r.rate("capacity_400_max", f.capacity_400_max),
        capacity_500_max=r.rate("capacity_500_max", f.capacity_500_max),
        capacity_exponent=r.number("capacity_exponent", f.capacity_exponent),
    )
    if failures.capacity_400_max + failures.capacity_500_max > 1:
        raise r.error("capacity_500_max", "capacity_400_max + capacity_500_max must be <= 1")
    r.done()

    r = top.sub("sessions")
    sessions = SessionParams(
        idle_timeout_min=r.timeout_minutes("idle_timeout_min", SessionParams.idle_timeout_min),
        max_duration_min=r.timeout_minutes("max_duration_min", SessionParams.max_duration_min),
    )
    r.done()

    r = top.sub("billing")
    b = BillingParams()
    cost_limit: float | None = None
    if r.has("cost_limit"):
        cost_limit = r.number("cost_limit", 0.0)
    billing = BillingParams(
        tier=r.string("tier", b.tier),
        credits=r.number("credits", b.credits),
        included_credits=r.number("included_credits", b.included_credits),
        gifts_balance=r.number("gifts_balance", b.gifts_balance),
        credits_per_session=r.number("credits_per_session", b.credits_per_session),
        cost_limit=cost_limit,
        cost_limit_exceeded=r.boolean("cost_limit_exceeded", b.cost_limit_exceeded),
    )
    r.done()

    r = top.sub("anomalies")
    a = AnomalyParams()
    anomalies = AnomalyParams(
        unknown_status_rate=r.rate("unknown_status_rate"),
        unknown_status_value=r.string("unknown_status_value", a.unknown_status_value),
        backwards_rate=r.rate("backwards_rate"),
        completed_without_ready_rate=r.rate("completed_without_ready_rate"),
        window_s=r.number("window_s", a.window_s),
    )
    total = (
        anomalies.unknown_status_rate
        + anomalies.backwards_rate
        + anomalies.completed_without_ready_rate
    )
    if total > 1:
        raise r.error("completed_without_ready_rate", "the anomaly rates must add up to <= 1")
    r.done()

    dialect = _dialect(top.sub("dialect"))
    cdp = _cdp(top.sub("cdp"))
    backend = _backend(top.sub("backend"))
    r = top.sub("slowdown")
    w = SlowdownParams()
    slowdown = SlowdownParams(
        provisioning_scale=r.number("provisioning_scale", w.provisioning_scale, low=0.01),
        min_in_flight=r.integer("min_in_flight", w.min_in_flight, low=0),
        max_in_flight=r.integer("max_in_flight", w.max_in_flight, low=-1),
        tail_quantile=r.number("tail_quantile", w.tail_quantile, low=0.01, high=1.0),
        tail_stretch=r.number("tail_stretch", w.tail_stretch, low=0.01),
    )
    r.done()

    faults = _faults(top.sub("faults"))
    top.done()
    return Profile(
        name=name,
        time_scale=time_scale,
        seed=seed,
        faults=MappingProxyType(faults),
        description=description,
        capacity=capacity,
        rate_limit=rate_limit,
        phases=phases,
        failures=failures,
        sessions=sessions,
        billing=billing,
        anomalies=anomalies,
        dialect=dialect,
        cdp=cdp,
        backend=backend,
        slowdown=slowdown,
    )


def _cdp(r: _Reader) -> CdpParams:
    d = CdpParams()
    cdp = CdpParams(
        enabled=r.boolean("enabled", d.enabled),
        handshake=r.dist("handshake", d.handshake),
        first_command=r.dist("first_command", d.first_command),
        command=r.dist("command", d.command),
        navigate=r.dist("navigate", d.navigate),
        product=r.string("product", d.product),
    )
    if not cdp.product.strip():
        raise r.error("product", "must be a non-empty string")
    r.done()
    return cdp


def _backend(r: _Reader) -> BackendParams:
    d = BackendParams()
    backend = BackendParams(
        kind=r.choice("kind", d.kind, BACKENDS),
        executable=r.string("executable", d.executable),
        launch_timeout_s=r.number("launch_timeout_s", d.launch_timeout_s),
        extra_args=r.strings("extra_args", d.extra_args),
    )
    if backend.launch_timeout_s <= 0:
        raise r.error("launch_timeout_s", f"must be > 0, got {backend.launch_timeout_s!r}")
    for arg in backend.extra_args:
        # The fixed flags keep the browser on loopback and off the network; an extra flag
        # must not quietly undo them.
        if not arg.startswith("--") or arg.split("=", 1)[0] in _FIXED_FLAG_NAMES:
            raise r.error(
                "extra_args", f"{arg!r} is not an extra --flag (or overrides a fixed one)"
            )
    r.done()
    return backend


# Flags the chromium backend always passes (bench/simulator/browsers.py); extra_args may
# not repeat them with another value.
_FIXED_FLAG_NAMES = frozenset({
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--user-data-dir", "--remote-debugging-port", "--remote-debugging-address",
})


def _dialect(r: _Reader) -> DialectParams:
    d = DialectParams()
    live = r.string("live_session_status", d.live_session_status)
    ended = r.string("ended_session_status", d.ended_session_status)
    for key, word in (("live_session_status", live), ("ended_session_status", ended)):
        if not word.strip():
            raise r.error(key, "must be a non-empty word")
    if live == ended:
        # A client could never tell a live session from an ended one.
        raise r.error("ended_session_status", f"must differ from live_session_status ({live!r})")
    unknown_phases = r.strings("unknown_phases", d.unknown_phases)
    for word in unknown_phases:
        if word in SPEC_PHASES or not word.strip():
            raise r.error("unknown_phases", f"{word!r} is not an unknown phase word")
    dialect = DialectParams(
        live_session_status=live,
        ended_session_status=ended,
        list_ended_sessions=r.boolean("list_ended_sessions", d.list_ended_sessions),
        list_paging=r.choice("list_paging", d.list_paging, LIST_PAGING),
        list_page_size=r.integer("list_page_size", d.list_page_size, low=1),
        ignore_tag_filter=r.boolean("ignore_tag_filter", d.ignore_tag_filter),
        foreign_sessions=r.integer("foreign_sessions", d.foreign_sessions, low=0),
        foreign_tags=r.strings("foreign_tags", d.foreign_tags),
        delete_status=r.code("delete_status", d.delete_status, DELETE_STATUSES),
        delete_ended_status=r.code(
            "delete_ended_status", d.delete_ended_status, DELETE_ENDED_STATUSES
        ),
        delete_unknown_status=r.code(
            "delete_unknown_status", d.delete_unknown_status, DELETE_UNKNOWN_STATUSES
        ),
        delete_500_rate=r.rate("delete_500_rate", d.delete_500_rate),
        phase_ready_lead_s=r.number("phase_ready_lead_s", d.phase_ready_lead_s),
        no_progress_rate=r.rate("no_progress_rate", d.no_progress_rate),
        unknown_phase_rate=r.rate("unknown_phase_rate", d.unknown_phase_rate),
        unknown_phases=unknown_phases,
        session_lag_s=r.number("session_lag_s", d.session_lag_s),
        status_after_end=r.choice("status_after_end", d.status_after_end, STATUS_AFTER_END),
        retry_after_format=r.choice(
            "retry_after_format", d.retry_after_format, RETRY_AFTER_FORMATS
        ),
        server_error_retry_after=r.boolean(
            "server_error_retry_after", d.server_error_retry_after
        ),
        redirect_rate=r.rate("redirect_rate", d.redirect_rate),
        redirect_endpoints=r.strings("redirect_endpoints", d.redirect_endpoints, ENDPOINTS),
        redirect_codes=r.codes("redirect_codes", d.redirect_codes, REDIRECT_CODES),
        redirect_targets=r.strings("redirect_targets", d.redirect_targets, REDIRECT_TARGETS),
        create_status=r.code("create_status", d.create_status, CREATE_STATUSES),
        extra_fields=r.boolean("extra_fields", d.extra_fields),
    )
    if not dialect.foreign_tags or not all(t.strip() for t in dialect.foreign_tags):
        raise r.error("foreign_tags", "tags must be non-empty words")
    r.done()
    return dialect


def load_profile(
    name_or_path: str, *, time_scale: float | None = None, seed: int | None = None
) -> Profile:
    """Load a bundled profile by name, or a .toml file by path, with optional overrides."""
    raw = _resolve(name_or_path, None, ())
    profile = _build(raw, name_or_path)
    changes: dict[str, Any] = {}
    if time_scale is not None:
        if isinstance(time_scale, bool) or not (math.isfinite(time_scale) and time_scale > 0):
            raise ProfileError(f"time_scale override must be > 0, got {time_scale!r}")
        changes["time_scale"] = float(time_scale)
    if seed is not None:
        changes["seed"] = seed
    return dataclasses.replace(profile, **changes) if changes else profile


def profile_with_faults(profile: Profile, faults: Mapping[str, EndpointFaults]) -> Profile:
    """The same profile with its fault table replaced (missing endpoint = no faults)."""
    for key in faults:
        if key not in FAULT_ENDPOINTS:
            expected = ", ".join(FAULT_ENDPOINTS)
            raise ProfileError(f"faults.{key}: unknown endpoint (expected one of {expected})")
    return dataclasses.replace(profile, faults=MappingProxyType(dict(faults)))


def profile_with_provisioning_scale(profile: Profile, scale: float) -> Profile:
    """The same profile with provisioning `scale` times slower (1.3 = a 30% slower candidate)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ProfileError(f"provisioning_scale must be > 0, got {scale!r}")
    phases = dataclasses.replace(profile.phases, provisioning_scale=float(scale))
    return dataclasses.replace(profile, phases=phases)
