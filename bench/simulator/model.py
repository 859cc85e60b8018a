"""Pure discrete-event model of the async-session service: slots, queue, phases, failures, truth."""

from __future__ import annotations

import dataclasses
import enum
import heapq
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bench.simulator.profile import Profile

# Internal request states. Status/phase strings are what the API shows; the
# state is what the model reasons with (an anomaly can show a status that does
# not match the state, on purpose).
(
    _QUEUED,
    _PROVISIONING,
    _CONFIGURING,
    _READY,
    _ENDED,
    _FAILED,
    _CANCELLED,
    _COMPLETED_EARLY,
) = range(8)
_OUTCOME = {
    _QUEUED: "pending",
    _PROVISIONING: "pending",
    _CONFIGURING: "pending",
    _READY: "ready",
    _ENDED: "ready",
    _FAILED: "failed",
    _CANCELLED: "cancelled",
    _COMPLETED_EARLY: "completed_before_ready",
}

# Event kinds on the heap.
(
    _EV_ELIGIBLE,
    _EV_PROV_END,
    _EV_CONF_END,
    _EV_FAIL,
    _EV_EXPIRE,
    _EV_UNKNOWN_START,
    _EV_UNKNOWN_END,
    _EV_BACK_START,
    _EV_BACK_END,
    _EV_READY,
    _EV_ROW,
) = range(11)

MSG_FAILED_TO_RUN = "Failed to run browser"
MSG_NO_BROWSER = "No browser available"
# Foreign session ids are name-based UUIDs, so adding foreign sessions never draws from
# the model's rng (a seeded run's draws stay the same with or without them).
_FOREIGN_NS = uuid.UUID("5b6f0a52-8c1e-4c55-9a43-6d3f1f0c2e7a")


def unserved_cdp_url(session_id: str) -> str:
    """The cdp_url of a session nobody serves CDP for (the model alone, or CDP disabled)."""
    return f"wss://connect.simulator.invalid?sessionId={session_id}"


class ModelListener(Protocol):
    """What the layer around the model is told, synchronously, as the model changes.

    Called from inside the model's calls (advance included), so an implementation only
    takes note or schedules work; it never calls back into the model from there.
    """

    def launch(self, request_id: str) -> None:
        """An external backend must start a browser for this request (now provisioning)."""

    def released(self, request_id: str, session_id: str | None) -> None:
        """The request gave its slot back (session ended, failed, cancelled, completed)."""


class EndResult(enum.Enum):
    ENDED = "ended"
    ALREADY_ENDED = "already_ended"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Accepted:
    request_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    http_status: int
    code: str
    message: str
    retry_after_s: float | None  # already scaled by time_scale; None = no Retry-After


@dataclass(frozen=True, slots=True)
class SessionView:
    session_id: str
    # The dialect's words: "running" while live (the real API's value, outside the spec
    # enum), then "ended", by default.
    status: str
    tags: tuple[str, ...]
    created_at_wall: float
    cdp_url: str
    live_view_url: str
    created_at_iso: str = ""  # created_at_wall as ISO 8601 UTC with ms, formatted once
    seq: int = 0  # order in which sessions came to be (list order, cursor positions)


@dataclass(frozen=True, slots=True)
class AsyncRequestView:
    request_id: str
    status: str
    phase: str
    created_at_wall: float
    session: SessionView | None
    created_at_iso: str = ""  # created_at_wall as ISO 8601 UTC with ms, formatted once


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """Token-bucket state for RateLimit / RateLimit-Policy headers (seconds already scaled)."""

    limit: int
    remaining: int
    reset_s: float  # until the bucket is full again
    window_s: float  # time to refill a whole bucket


def iso_utc(wall: float) -> str:
    """Epoch seconds as the API's timestamp format, e.g. 2026-06-04T11:00:00.000Z."""
    return datetime.fromtimestamp(wall, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _active(table: object, default: bool) -> bool:
    if isinstance(table, Mapping):
        value = table.get("active", default)
        return value if isinstance(value, bool) else default
    return default


def config_features(config: Mapping[str, object]) -> tuple[str, ...]:
    """Features a create body switches on, with the API's documented defaults applied."""
    session = config.get("session")
    session = session if isinstance(session, Mapping) else {}
    browser = config.get("browser")
    browser = browser if isinstance(browser, Mapping) else {}
    profile = browser.get("profile")
    on = {
        "proxy": _active(session.get("proxy"), False),
        "recording": _active(session.get("recording"), True),
        "adblock": _active(browser.get("adblock"), True),
        "popup_blocker": _active(browser.get("popup_blocker"), True),
        "captcha_solver": _active(browser.get("captcha_solver"), False),
        "extra_stealth": _active(browser.get("extra_stealth"), False),
        "headless": _active(browser.get("headless"), False),
        "profile": isinstance(profile, Mapping) and bool(profile.get("name")),
        "extensions": bool(browser.get("extensions")),
        "integrations": bool(config.get("integrations")),
        "identities": bool(config.get("identities")),
    }
    return tuple(name for name, enabled in on.items() if enabled)


def _tags(config: Mapping[str, object]) -> tuple[str, ...]:
    session = config.get("session")
    tags = session.get("tags") if isinstance(session, Mapping) else None
    if not isinstance(tags, list):
        return ()
    return tuple(tag for tag in tags if isinstance(tag, str))


def _timeout_minutes(config: Mapping[str, object], key: str, default: float) -> float:
    session = config.get("session")
    timeout = session.get("timeout") if isinstance(session, Mapping) else None
    value = timeout.get(key, default) if isinstance(timeout, Mapping) else default
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


class _Request:
    """One async request and (once ready) its session.

    About 1.8 KB each once finished (measured with tracemalloc), so an hour at
    50 accepted creates/s keeps ~330 MB: fine to keep every record for truth().
    """

    __slots__ = (
        "anomaly",
        "cdp_url",
        "created_t",
        "ended",
        "epoch",
        "expire_by",
        "features",
        "foreign",
        "idle_s",
        "max_s",
        "phase",
        "ready_t",
        "request_id",
        "row_t",
        "session",
        "session_id",
        "state",
        "status",
        "tags",
        "transitions",
        "view",
        "wall0",
    )

    def __init__(
        self,
        request_id: str,
        created_t: float,
        tags: tuple[str, ...],
        features: tuple[str, ...],
        anomaly: str | None,
    ) -> None:
        self.request_id = request_id
        self.created_t = created_t
        self.tags = tags
        self.features = features
        self.anomaly = anomaly
        self.state = _QUEUED
        self.status = "pending"
        self.phase = "queued"
        self.epoch = 0  # bumped on every terminal change: events scheduled before are stale
        self.transitions: list[tuple[str, str, float]] = [("pending", "queued", created_t)]
        self.ready_t: float | None = None
        self.ended: tuple[float, str] | None = None
        self.session_id: str | None = None
        self.session: SessionView | None = None
        self.idle_s: float | None = None
        self.max_s: float | None = None
        self.expire_by = ""
        self.wall0 = ""
        self.view: AsyncRequestView | None = None
        # When the session row appeared: the status shows `session`, GET and the list
        # show the session, from then on (later than ready_t with a session lag).
        self.row_t: float | None = None
        self.foreign = False  # a session of the key that this run did not create
        self.cdp_url: str | None = None  # an external backend's browser URL, once it answered


class SessionModel:
    """The service as a pure function of (profile, rng, the times it is called at)."""

    def __init__(
        self, profile: Profile, *, rng: random.Random, start_mono: float, start_wall: float
    ) -> None:
        self.profile = profile
        self.rng = rng
        self.start_mono = start_mono
        self.start_wall = start_wall
        self._ts = profile.time_scale
        self._cap = profile.capacity.max_concurrent_browsers  # -1 = unlimited
        self._now = start_mono
        self._heap: list[tuple[float, int, int, _Request, int]] = []
        self._seq = 0
        self._requests: dict[str, _Request] = {}
        self._active: dict[str, _Request] = {}  # not terminal (in flight or live)
        self._sessions: dict[str, _Request] = {}  # every session ever produced
        self._live: dict[str, _Request] = {}  # live sessions, in ready order
        self._queue: deque[_Request] = deque()  # eligible, waiting for a slot, FIFO
        self._pending = 0  # requests with status pending (before provisioning)
        self._busy = 0  # slots held: provisioning + configuring + live
        self._provisioning = 0  # requests in the provisioning phase right now
        self._last_eligible = start_mono
        rl = profile.rate_limit
        self._rate = rl.creates_per_s / self._ts if rl.creates_per_s > 0 else 0.0
        self._tokens = float(rl.burst)
        self._tokens_t = start_mono
        self._credits_used = 0.0
        self._polls = 0
        self._polls_unknown = 0
        self._accepted = 0
        self._rejected: Counter[str] = Counter()
        self._rejected_codes: Counter[str] = Counter()
        self._ready_count = 0
        self._failed_count = 0
        self._ended_count = 0
        self._leaked = 0
        self._cancelled = 0
        self._completed_early = 0
        self._faults: Counter[str] = Counter()
        self._faults_by_endpoint: dict[str, Counter[str]] = {}
        dialect = profile.dialect
        self._live_word = dialect.live_session_status
        self._ended_word = dialect.ended_session_status
        self._phase_lead = dialect.phase_ready_lead_s * self._ts
        self._session_lag = dialect.session_lag_s * self._ts
        self._session_seq = 0
        self._foreign: dict[str, _Request] = {}  # session id -> foreign session, in order
        self._foreign_ended: Counter[str] = Counter()  # by what ended them
        anomalies = profile.anomalies
        self._anomaly_rates = (
            ("unknown_status", anomalies.unknown_status_rate),
            ("backwards", anomalies.backwards_rate),
            ("completed_without_ready", anomalies.completed_without_ready_rate),
        )
        self._any_anomaly = any(rate > 0 for _, rate in self._anomaly_rates)
        # An external backend (a real browser per request) ends provisioning from outside:
        # see provisioned() and provision_failed().
        self._external = profile.backend.kind != "model"
        self._cdp_url_for: Callable[[str], str] = unserved_cdp_url
        self._listeners: list[ModelListener] = []
        self._handlers = {
            _EV_ELIGIBLE: self._on_eligible,
            _EV_PROV_END: self._on_prov_end,
            _EV_CONF_END: self._on_conf_end,
            _EV_FAIL: self._on_fail,
            _EV_EXPIRE: self._on_expire,
            _EV_UNKNOWN_START: self._on_unknown_start,
            _EV_UNKNOWN_END: self._on_unknown_end,
            _EV_BACK_START: self._on_back_start,
            _EV_BACK_END: self._on_back_end,
            _EV_READY: self._on_ready,
            _EV_ROW: self._on_row,
        }
        if dialect.foreign_sessions:
            self.add_foreign(dialect.foreign_sessions, dialect.foreign_tags, start_mono)

    # ------------------------------------------------------------------ clock

    def advance(self, now: float) -> None:
        """Process every scheduled event with time <= now, in (time, scheduling order)."""
        # The model's clock never goes back: a caller's slightly stale `now`
        # must not let new events land before ones already processed.
        if now > self._now:
            self._now = now
        heap = self._heap
        limit = self._now
        while heap and heap[0][0] <= limit:
            t, _, kind, rec, epoch = heapq.heappop(heap)
            if rec.epoch == epoch:
                self._handlers[kind](rec, t)

    def next_event_time(self) -> float | None:
        """Time of the next event that will change something, or None."""
        heap = self._heap
        while heap and heap[0][4] != heap[0][3].epoch:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _schedule(self, t: float, kind: int, rec: _Request) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, rec, rec.epoch))

    def _wall(self, t: float) -> float:
        return self.start_wall + (t - self.start_mono)

    def wall_time(self, now: float) -> float:
        """The wall-clock time (epoch seconds) at the caller's monotonic `now`."""
        return self._wall(now)

    # ------------------------------------------------------------------ the layer around

    def add_listener(self, listener: ModelListener) -> None:
        self._listeners.append(listener)

    def set_cdp_url_factory(self, factory: Callable[[str], str]) -> None:
        """How a session's cdp_url reads (session id -> URL), e.g. once the server is bound.

        Sessions that already exist (foreign ones made at start) get the new URL too; a
        session whose browser gave its own URL keeps that one.
        """
        self._cdp_url_for = factory
        for rec in self._sessions.values():
            if rec.session is not None and rec.cdp_url is None and rec.session_id is not None:
                rec.session = dataclasses.replace(rec.session, cdp_url=factory(rec.session_id))
                self._rebuild_view(rec, show=rec.status == "ready")

    def _released(self, rec: _Request) -> None:
        for listener in self._listeners:
            listener.released(rec.request_id, rec.session_id)

    # ------------------------------------------------------------------ state changes

    def _set(self, rec: _Request, status: str, phase: str, t: float, *, show: bool = True) -> None:
        """Record a status/phase change and rebuild the cached view that polls return."""
        rec.status = status
        rec.phase = phase
        rec.transitions.append((status, phase, t))
        self._rebuild_view(rec, show=show)

    def _rebuild_view(self, rec: _Request, *, show: bool) -> None:
        # The session shows only once its row exists (session_lag_s after ready).
        rec.view = AsyncRequestView(
            rec.request_id,
            rec.status,
            rec.phase,
            self._wall(rec.created_t),
            rec.session if show and rec.row_t is not None else None,
            rec.wall0,
        )

    def _free_slot(self) -> None:
        self._busy -= 1

    def _has_free_slot(self) -> bool:
        return self._cap < 0 or self._busy < self._cap

    def _dispatch(self, t: float) -> None:
        """Hand free slots to the head of the queue at instant t."""
        queue = self._queue
        while queue and self._has_free_slot():
            rec = queue.popleft()
            if rec.state == _QUEUED:
                self._start_provisioning(rec, t)

    def _utilisation(self) -> float:
        return 0.0 if self._cap < 0 else self._busy / self._cap

    def _start_provisioning(self, rec: _Request, t: float) -> None:
        self._pending -= 1
        self._busy += 1
        self._provisioning += 1
        rec.state = _PROVISIONING
        self._set(rec, "processing", "provisioning", t)
        if self._external:
            # The browser's real start-up is the provisioning time: provisioned() ends it.
            # No modelled failure either: the real browser fails or answers on its own.
            for listener in self._listeners:
                listener.launch(rec.request_id)
            return
        phases = self.profile.phases
        rng = self.rng
        util = self._utilisation()
        # Only the part above the distribution's floor stretches with load: the
        # floor is the pod's fixed boot cost, the rest is scheduling and image
        # pull that contend with the other pods starting at the same time.
        draw = phases.provisioning.sample(rng)
        floor = phases.provisioning.floor_s
        slowdown = self.profile.slowdown
        if slowdown.tail_stretch != 1.0 and slowdown.tail_quantile < 1.0:
            cut = phases.provisioning.quantile(slowdown.tail_quantile)
            if draw > cut:
                draw = cut + (draw - cut) * slowdown.tail_stretch
        stretch = (
            1.0
            + phases.contention * (self._provisioning - 1)
            + phases.utilisation_stretch * util * util
        )
        prov = (floor + (draw - floor) * stretch) * phases.provisioning_scale * self._ts
        prov *= slowdown.scale_for(self._pending + self._busy)
        conf = phases.configuring.sample(rng)
        extras = phases.features
        for feature in rec.features:
            extra = extras.get(feature)
            if extra is not None:
                conf += extra.sample(rng)
        conf *= self._ts
        self._schedule(t + prov, _EV_PROV_END, rec)
        self._schedule(t + prov + conf, _EV_CONF_END, rec)
        failures = self.profile.failures
        p_fail = (
            failures.provision_base + failures.provision_slope * util**failures.provision_exponent
        )
        if p_fail > 0 and rng.random() < p_fail:
            # Somewhere inside provisioning or configuring, never on a boundary.
            self._schedule(t + (0.05 + 0.9 * rng.random()) * (prov + conf), _EV_FAIL, rec)
        if rec.anomaly == "unknown_status":
            self._schedule(t + 0.3 * prov, _EV_UNKNOWN_START, rec)
            self._schedule(t + 0.7 * prov, _EV_UNKNOWN_END, rec)

    def _configuring_draw(self, rec: _Request) -> float:
        phases = self.profile.phases
        conf = phases.configuring.sample(self.rng)
        for feature in rec.features:
            extra = phases.features.get(feature)
            if extra is not None:
                conf += extra.sample(self.rng)
        return conf * self._ts

    def _on_eligible(self, rec: _Request, t: float) -> None:
        if rec.state == _QUEUED:
            self._queue.append(rec)
            self._dispatch(t)

    def _on_prov_end(self, rec: _Request, t: float) -> None:
        if rec.state == _PROVISIONING:
            self._provisioning -= 1
            rec.state = _CONFIGURING
            self._set(rec, "processing", "configuring", t)

    def _on_conf_end(self, rec: _Request, t: float) -> None:
        if rec.state != _CONFIGURING:
            return
        if rec.anomaly == "completed_without_ready":
            self._terminate(rec, _COMPLETED_EARLY, "completed", t)
            self._completed_early += 1
            self._dispatch(t)
            return
        if self._phase_lead > 0:
            # Phase-first dialect: the phase says ready while the status still says
            # processing; the session is connectable (true ready) only at _EV_READY.
            self._set(rec, "processing", "ready", t)
            self._schedule(t + self._phase_lead, _EV_READY, rec)
            return
        self._make_ready(rec, t)

    def _on_ready(self, rec: _Request, t: float) -> None:
        if rec.state == _CONFIGURING:
            self._make_ready(rec, t)

    def _on_row(self, rec: _Request, t: float) -> None:
        if rec.state == _READY and rec.row_t is None:
            rec.row_t = t
            # No transition: status and phase are unchanged, only `session` appears.
            self._rebuild_view(rec, show=rec.status == "ready")

    def _new_session(self, rec: _Request, t: float) -> None:
        session_id = rec.session_id
        assert session_id is not None
        wall = self._wall(t)
        self._session_seq += 1
        rec.session = SessionView(
            session_id,
            self._live_word,
            rec.tags,
            wall,
            rec.cdp_url or self._cdp_url_for(session_id),
            f"https://live.simulator.invalid/sessions/{session_id}",
            iso_utc(wall),
            self._session_seq,
        )
        self._sessions[session_id] = rec
        self._live[session_id] = rec

    def _make_ready(self, rec: _Request, t: float) -> None:
        rec.state = _READY
        rec.ready_t = t
        rec.session_id = self._uuid()
        self._new_session(rec, t)
        self._ready_count += 1
        if self._session_lag > 0:
            self._schedule(t + self._session_lag, _EV_ROW, rec)
        else:
            rec.row_t = t
        self._set(rec, "ready", "ready", t)
        # CDP traffic does not reset the idle timer (a connect check is a moment in a
        # session's life), so idle time counts from ready and the session simply ends at
        # whichever limit comes first.
        limits = [
            (s, by)
            for s, by in ((rec.idle_s, "idle_timeout"), (rec.max_s, "max_duration"))
            if s is not None
        ]
        if limits:
            delay, rec.expire_by = min(limits, key=lambda item: item[0])
            self._schedule(t + delay, _EV_EXPIRE, rec)
        if rec.anomaly == "backwards":
            window = self.profile.anomalies.window_s * self._ts
            self._schedule(t + window, _EV_BACK_START, rec)
            self._schedule(t + 2 * window, _EV_BACK_END, rec)

    def _terminate(self, rec: _Request, state: int, status: str, t: float) -> None:
        """Leave provisioning/configuring for a terminal state, giving the slot back."""
        if rec.state == _PROVISIONING:
            self._provisioning -= 1
        rec.state = state
        rec.epoch += 1
        self._active.pop(rec.request_id, None)
        self._free_slot()
        self._set(rec, status, rec.phase, t)
        self._released(rec)

    def _withdraw(self, rec: _Request, state: int, status: str, t: float) -> bool:
        """End a request not yet ready in a terminal state; False when it is past that.

        A queued one holds no slot yet: only the pending count drops (the queue skips
        it lazily). One in provisioning/configuring gives its slot back; the caller
        dispatches the queue when it is done.
        """
        if rec.state == _QUEUED:
            self._pending -= 1
            rec.state = state
            rec.epoch += 1
            self._active.pop(rec.request_id, None)
            self._set(rec, status, rec.phase, t)
            return True
        if rec.state in (_PROVISIONING, _CONFIGURING):
            self._terminate(rec, state, status, t)
            return True
        return False

    def _on_fail(self, rec: _Request, t: float) -> None:
        if rec.state in (_PROVISIONING, _CONFIGURING):
            self._terminate(rec, _FAILED, "failed", t)
            self._failed_count += 1
            self._dispatch(t)

    def _on_expire(self, rec: _Request, t: float) -> None:
        if rec.state == _READY:
            self._leaked += 1
            self._end(rec, t, rec.expire_by)
            self._dispatch(t)

    def _on_unknown_start(self, rec: _Request, t: float) -> None:
        if rec.state == _PROVISIONING:
            self._set(rec, self.profile.anomalies.unknown_status_value, rec.phase, t)

    def _on_unknown_end(self, rec: _Request, t: float) -> None:
        if rec.state == _PROVISIONING and rec.status != "processing":
            self._set(rec, "processing", rec.phase, t)

    def _on_back_start(self, rec: _Request, t: float) -> None:
        if rec.state == _READY:
            self._set(rec, "processing", "configuring", t, show=False)

    def _on_back_end(self, rec: _Request, t: float) -> None:
        if rec.state == _READY and rec.status != "ready":
            self._set(rec, "ready", "ready", t)

    def _end(self, rec: _Request, t: float, by: str) -> None:
        """End a live session (the caller hands the freed slot on)."""
        assert rec.session is not None and rec.session_id is not None
        rec.state = _ENDED
        rec.epoch += 1
        rec.ended = (t, by)
        rec.session = dataclasses.replace(rec.session, status=self._ended_word)
        if rec.row_t is None:
            rec.row_t = t  # ended before its row showed: the ended row shows from now on
        self._live.pop(rec.session_id, None)
        self._released(rec)
        if rec.foreign:
            # Outside the run's capacity and counts: only who ended it is recorded.
            self._foreign_ended[by] += 1
            return
        self._active.pop(rec.request_id, None)
        self._free_slot()
        self._ended_count += 1
        self._set(rec, "completed", "ready", t)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ------------------------------------------------------------------ API

    def _reject(self, status: int, code: str, message: str, retry: float | None) -> Rejected:
        self._rejected[str(status)] += 1
        self._rejected_codes[code] += 1
        return Rejected(status, code, message, retry)

    def _take_token(self, t: float) -> float | None:
        """None if a create token was available (and taken), else seconds until one is."""
        if self._rate <= 0:
            return None
        burst = self.profile.rate_limit.burst
        self._tokens = min(burst, self._tokens + (t - self._tokens_t) * self._rate)
        self._tokens_t = t
        # The epsilon absorbs float error in clock differences (100.05 - 100 < 0.05),
        # so a client that waits exactly Retry-After is not turned away again.
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            return None
        return (1.0 - self._tokens) / self._rate

    def create(self, config: Mapping[str, object], now: float) -> Accepted | Rejected:
        """POST /v1/sessions/async: accept into the queue, or reject like the real service."""
        self.advance(now)
        t = self._now
        # Gateway rate limit first: a rejected create still spends its token.
        wait = self._take_token(t)
        if wait is not None:
            return self._reject(429, "rate_limited", "Rate limit exceeded", wait)
        billing = self.profile.billing
        cost = billing.credits_per_session
        if billing.cost_limit_exceeded or (
            billing.cost_limit is not None and self._credits_used + cost > billing.cost_limit
        ):
            return self._reject(403, "cost_limit_exceeded", "Project cost limit reached", None)
        if self._credits_used + cost > billing.credits:
            return self._reject(402, "insufficient_credits", "Insufficient credits", None)
        capacity = self.profile.capacity
        if self._cap >= 0:
            # The queue is what cannot get a slot now: pending requests beyond the free slots.
            waiting = self._pending - (self._cap - self._busy)
            if waiting >= capacity.max_queue:
                return self._reject(
                    429,
                    "too_many_requests",
                    "Too many pending session requests",
                    capacity.queue_retry_after_s * self._ts,
                )
            failures = self.profile.failures
            if failures.capacity_400_max > 0 or failures.capacity_500_max > 0:
                pressure = (self._busy + self._pending) / self._cap
                x = (pressure - failures.capacity_threshold) / (1 - failures.capacity_threshold)
                x = min(1.0, max(0.0, x))
                if x > 0:
                    shape = x**failures.capacity_exponent
                    p400 = failures.capacity_400_max * shape
                    p500 = failures.capacity_500_max * shape
                    u = self.rng.random()
                    if u < p400:
                        return self._reject(400, "failed_to_run_browser", MSG_FAILED_TO_RUN, None)
                    if u < p400 + p500:
                        return self._reject(500, "no_browser_available", MSG_NO_BROWSER, None)
        return Accepted(self._accept(config, t))

    def _accept(self, config: Mapping[str, object], t: float) -> str:
        rng = self.rng
        anomaly = None
        if self._any_anomaly:
            u = rng.random()
            for name, rate in self._anomaly_rates:
                if u < rate:
                    anomaly = name
                    break
                u -= rate
        request_id = self._uuid()
        rec = _Request(request_id, t, _tags(config), config_features(config), anomaly)
        rec.wall0 = iso_utc(self._wall(t))
        sessions = self.profile.sessions
        for attr, key, default in (
            ("idle_s", "idle_timeout", sessions.idle_timeout_min),
            ("max_s", "max_duration", sessions.max_duration_min),
        ):
            minutes = _timeout_minutes(config, key, default)
            setattr(rec, attr, None if minutes < 0 else minutes * 60.0 * self._ts)
        rec.view = AsyncRequestView(request_id, "pending", "queued", self._wall(t), None, rec.wall0)
        self._requests[request_id] = rec
        self._active[request_id] = rec
        self._pending += 1
        self._accepted += 1
        self._credits_used += self.profile.billing.credits_per_session
        # Eligibility times are kept non-decreasing so the queue stays FIFO by
        # creation even though each dispatch delay is drawn independently.
        eligible = max(t + self.profile.phases.dispatch.sample(rng) * self._ts, self._last_eligible)
        self._last_eligible = eligible
        self._schedule(eligible, _EV_ELIGIBLE, rec)
        return request_id

    def request(self, request_id: str, now: float) -> AsyncRequestView | None:
        """GET /v1/sessions/async/{id}/status: the cached view (counts a poll); None = unknown."""
        self.advance(now)
        rec = self._requests.get(request_id)
        if rec is None:
            self._polls_unknown += 1
            return None
        self._polls += 1
        return rec.view

    def complete_early(self, request_id: str, now: float) -> AsyncRequestView | None:
        """End a request still in flight as `completed`, never ready (a status anomaly).

        Returns its new view, or None when the request is unknown or no longer in flight.
        """
        self.advance(now)
        rec = self._requests.get(request_id)
        if rec is None:
            return None
        t = self._now
        if not self._withdraw(rec, _COMPLETED_EARLY, "completed", t):
            return None
        self._dispatch(t)  # a slot may have been given back
        self._completed_early += 1
        return rec.view

    def provisioned(self, request_id: str, now: float, cdp_url: str) -> bool:
        """An external backend's browser answered: provisioning ends, configuring starts.

        False when the request is no longer provisioning (cancelled meanwhile): the
        caller then stops the browser it started.
        """
        self.advance(now)
        rec = self._requests.get(request_id)
        if rec is None or rec.state != _PROVISIONING:
            return False
        t = self._now
        self._provisioning -= 1
        rec.state = _CONFIGURING
        rec.cdp_url = cdp_url
        self._set(rec, "processing", "configuring", t)
        self._schedule(t + self._configuring_draw(rec), _EV_CONF_END, rec)
        return True

    def provision_failed(self, request_id: str, now: float) -> bool:
        """An external backend's browser did not come up: the request fails (slot freed)."""
        self.advance(now)
        rec = self._requests.get(request_id)
        if rec is None or rec.state != _PROVISIONING:
            return False
        t = self._now
        self._terminate(rec, _FAILED, "failed", t)
        self._failed_count += 1
        self._dispatch(t)
        return True

    def session_state(self, session_id: str, now: float) -> str | None:
        """`live` or `ended` for a session that exists, None for an unknown id.

        What a session's CDP endpoint asks before it answers.
        """
        self.advance(now)
        rec = self._sessions.get(session_id)
        if rec is None:
            return None
        return "live" if rec.state == _READY else "ended"

    def get_session(self, session_id: str, now: float) -> SessionView | None:
        self.advance(now)
        rec = self._sessions.get(session_id)
        return None if rec is None or rec.row_t is None else rec.session

    def end_session(self, session_id: str, now: float) -> EndResult:
        """DELETE /v1/sessions/{id}: the slot goes to the queue head at this very instant."""
        self.advance(now)
        rec = self._sessions.get(session_id)
        if rec is None:
            return EndResult.UNKNOWN
        if rec.state != _READY:
            return EndResult.ALREADY_ENDED
        self._end(rec, self._now, "delete")
        self._dispatch(self._now)
        return EndResult.ENDED

    def list_sessions(
        self, tags: Sequence[str], now: float, *, include_ended: bool = False
    ) -> list[SessionView]:
        """Sessions carrying all the given tags, oldest first: live ones, or every one.

        Foreign sessions are sessions of the key like any other; a session whose row has
        not appeared yet (session lag) is not listed.
        """
        self.advance(now)
        wanted = set(tags)
        records = self._sessions.values() if include_ended else self._live.values()
        return [
            rec.session
            for rec in records
            if rec.session is not None and rec.row_t is not None and wanted.issubset(rec.tags)
        ]

    def add_foreign(self, count: int, tags: Sequence[str], now: float) -> list[str]:
        """Start `count` live sessions of the key that no client of the run created.

        They stand for another user's work on the same key: listed, ended by DELETE or
        DELETE all like any session, but outside the capacity and the run's counters,
        and they never expire, so the truth says whether a client ended them.
        """
        self.advance(now)
        t = self._now
        ids = []
        for _ in range(count):
            n = len(self._foreign) + 1
            session_id = str(uuid.uuid5(_FOREIGN_NS, f"{self.start_wall!r}:{n}"))
            rec = _Request(f"foreign-{n}", t, tuple(tags), (), None)
            rec.foreign = True
            rec.state = _READY
            rec.ready_t = rec.row_t = t
            rec.session_id = session_id
            self._new_session(rec, t)
            self._foreign[session_id] = rec
            ids.append(session_id)
        return ids

    def end_all(self, now: float) -> int:
        """DELETE /v1/sessions/all: end every live session, cancel every request not yet ready."""
        self.advance(now)
        t = self._now
        # Cancel first so that the slots freed by ending sessions are not handed
        # to requests that are about to be cancelled anyway.
        for rec in list(self._active.values()):
            if self._withdraw(rec, _CANCELLED, "cancelled", t):
                self._cancelled += 1
        self._queue.clear()
        live = list(self._live.values())
        for rec in live:
            self._end(rec, t, "delete_all")
        return len(live)

    def billing(self, now: float) -> dict[str, object]:
        """GET /v1/billing data."""
        self.advance(now)
        b = self.profile.billing
        return {
            "credits": max(0.0, b.credits - self._credits_used),
            "credits_used": self._credits_used,
            "included_credits": b.included_credits,
            "billing_period": iso_utc(self._wall(self._now))[:7],
            "tier": b.tier,
            "gifts_balance": b.gifts_balance,
            "max_concurrent_browsers": self._cap,
            "cost_limit": b.cost_limit,
        }

    def rate_limit_info(self, now: float) -> RateLimitInfo | None:
        """Token-bucket state for RateLimit headers; None when the profile has no rate limit."""
        self.advance(now)
        if self._rate <= 0:
            return None
        burst = self.profile.rate_limit.burst
        tokens = min(burst, self._tokens + (self._now - self._tokens_t) * self._rate)
        return RateLimitInfo(burst, int(tokens), (burst - tokens) / self._rate, burst / self._rate)

    # ------------------------------------------------------------------ ground truth

    def counters(self, now: float) -> dict[str, object]:
        self.advance(now)
        foreign_live = sum(1 for rec in self._foreign.values() if rec.state == _READY)
        return {
            "live_sessions": len(self._live) - foreign_live,  # the run's own
            "leaked_sessions": self._leaked,
            "polls": self._polls,
            "polls_unknown": self._polls_unknown,
            "creates_accepted": self._accepted,
            "creates_rejected": dict(self._rejected),
            "creates_rejected_by_code": dict(self._rejected_codes),
            "sessions_ready": self._ready_count,
            "sessions_failed": self._failed_count,
            "sessions_ended": self._ended_count,
            "requests_cancelled": self._cancelled,
            "completed_before_ready": self._completed_early,
            "queue_length": self._pending,
            "busy_slots": self._busy,
            "provisioning": self._provisioning,
            "faults": dict(self._faults),
            "faults_by_endpoint": {e: dict(c) for e, c in self._faults_by_endpoint.items()},
            "foreign": {
                "sessions": len(self._foreign),
                "live": foreign_live,
                "ended": sum(self._foreign_ended.values()),
                "ended_by": dict(self._foreign_ended),
            },
        }

    def count_fault(self, kind: str, endpoint: str | None = None) -> None:
        """The HTTP layer reports each injected fault here, so the counters include them."""
        self._faults[kind] += 1
        if endpoint is not None:
            self._faults_by_endpoint.setdefault(endpoint, Counter())[kind] += 1

    def _time(self, t: float) -> dict[str, float]:
        return {"t": t - self.start_mono, "wall": self._wall(t)}

    def _truth_of(self, rec: _Request) -> dict[str, object]:
        ended = None
        if rec.ended is not None:
            ended = {**self._time(rec.ended[0]), "by": rec.ended[1]}
        return {
            "request_id": rec.request_id,
            "session_id": rec.session_id,
            "tags": list(rec.tags),
            "config_features": list(rec.features),
            "created": self._time(rec.created_t),
            "transitions": [
                {"status": status, "phase": phase, **self._time(t)}
                for status, phase, t in rec.transitions
            ],
            "outcome": _OUTCOME[rec.state],
            # The true ready instant: when the status turned ready (with the phase-first
            # dialect the phase said ready earlier; see the transitions).
            "ready_t": None if rec.ready_t is None else rec.ready_t - self.start_mono,
            # When `session` first showed (later than ready_t with a session lag).
            "session_shown_t": None if rec.row_t is None else rec.row_t - self.start_mono,
            "ended": ended,
            "anomaly": rec.anomaly,
        }

    def _foreign_truth(self, rec: _Request) -> dict[str, object]:
        ended = None
        if rec.ended is not None:
            ended = {**self._time(rec.ended[0]), "by": rec.ended[1]}
        return {
            "session_id": rec.session_id,
            "tags": list(rec.tags),
            "created": self._time(rec.created_t),
            "ended": ended,
        }

    def request_truth(self, request_id: str, now: float) -> dict[str, object] | None:
        """Ground truth of one request (same shape as an entry of truth()["requests"])."""
        self.advance(now)
        rec = self._requests.get(request_id)
        return None if rec is None else self._truth_of(rec)

    def truth(self, now: float) -> dict[str, object]:
        """Every request's true transitions, plus the counters; times relative to start_mono."""
        self.advance(now)
        return {
            "now": self._time(self._now),
            "profile": self.profile.name,
            "time_scale": self._ts,
            "requests": [self._truth_of(rec) for rec in self._requests.values()],
            "foreign_sessions": [self._foreign_truth(rec) for rec in self._foreign.values()],
            "counters": self.counters(now),
        }
