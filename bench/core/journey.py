"""Pure journey maths: one async-session request's observations -> phase durations + one outcome.

The measurement model (DESIGN.md): every call is sent at ``s`` and answered at
``r``; its observation instant is ``(s + r) / 2``.  A phase boundary A->B lies
between the last observation of A and the first of B; we estimate it at the
midpoint and its uncertainty is half that gap.  A phase no poll saw gets no
fabricated sample: it is counted as unobserved.  Times are seconds from a
monotonic clock; metrics come out in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.core.censoring import journey_intervals
from bench.core.outcomes import Outcome

# Phases in the order the API walks them; `ready` is the end of the walk.
PHASES: tuple[str, ...] = ("queued", "provisioning", "configuring", "ready")
TIMED_PHASES: tuple[str, ...] = PHASES[:-1]
PHASE_ORDER: dict[str, int] = {p: i for i, p in enumerate(PHASES)}
# Time the request spent in no phase the answers named (see `label`).
UNKNOWN = "unknown"

# Statuses the spec lists; anything else is a protocol error.
LIVE_STATUSES = frozenset({"pending", "processing"})
TERMINAL_STATUSES = frozenset({"ready", "completed", "failed", "cancelled"})
KNOWN_STATUSES = LIVE_STATUSES | TERMINAL_STATUSES

# Every metric a journey can record, in microseconds.
METRICS: tuple[str, ...] = (
    "create",
    "queued",
    "provisioning",
    "configuring",
    "unknown",
    "ready",
    "ready_seen",
    "poll",
    "release",
    # --cdp-check: websocket open; Browser.getVersion's round trip; createTarget to load
    "connect",
    "first_command",
    "navigate",
    # the load generator watching itself: how late each poll was sent against its
    # schedule, how late an open-model journey started, how late the event loop woke
    # (blocking), and the process's CPU microseconds per wall second
    "poll_lag",
    "start_lag",
    "loop_lag",
    "cpu",
)

_US = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP exchange, timed on the monotonic clock (seconds)."""

    sent: float
    received: float

    @property
    def instant(self) -> float:
        return (self.sent + self.received) / 2.0

    @property
    def latency(self) -> float:
        return self.received - self.sent


@dataclass(frozen=True, slots=True)
class Observation:
    """A status poll that was answered with a parseable body."""

    call: Call
    status: str
    phase: str | None
    session: bool = False  # the answer carried the session (connectable: ready_seen)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A duration or instant estimated from observations, with its uncertainty (seconds).

    The uncertainty bounds the error: the true value lies within value +- uncertainty.
    """

    value: float
    uncertainty: float


@dataclass(slots=True)
class JourneyResult:
    """What one journey contributes to the recorder."""

    outcome: Outcome
    # metric -> list of values in microseconds (poll has one per status call)
    samples: dict[str, list[float]] = field(default_factory=dict)
    # phases the journey passed through without any poll seeing them
    unobserved: list[str] = field(default_factory=list)
    estimates: dict[str, Estimate] = field(default_factory=dict)
    # metric -> (lower, upper) microseconds that certainly hold the truth (ready journeys;
    # bench.core.censoring): what interval-censored estimates are built from
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    http_status: int | None = None
    # polls whose phase went backwards (tolerated, but counted)
    anomalies: int = 0
    # the DELETE did not answer 2xx: the session may be alive; the clean-up sweep retries
    release_failed: bool = False
    # why the connect check failed ("stage: kind", e.g. "connect: refused"), if it did
    cdp_error: str | None = None


def _boundary(before: Call, after: Call) -> Estimate:
    """Where a change happened between the answer to `before` and the answer to `after`.

    The server answered `before` somewhere in [sent, received] with the old state and
    `after` in its own window with the new one, so the change lies in
    [before.sent, after.received].  The estimate is the midpoint of the two calls'
    instants; its uncertainty, half their gap plus half the slower call's round trip,
    is exactly the distance to the farther end of that window.
    """
    return Estimate(
        (before.instant + after.instant) / 2.0,
        (after.instant - before.instant) / 2.0 + max(before.latency, after.latency) / 2.0,
    )


def label(obs: Observation) -> str | None:
    """Which phase one status answer puts the request in; None once the walk has ended.

    The status decides and the phase is detail (the API doc): ``ready`` only when the
    *status* says so.  ``pending`` without a phase is ``queued`` (the doc: pending =
    not yet picked up, queued = waiting for capacity).  A ``processing`` answer without
    a phase, with a phase word we do not know, or whose phase says ``ready`` before
    the status does, tells us only that the request is not ready: ``unknown``.
    """
    if obs.status == "ready":
        return "ready"
    if obs.status not in ("pending", "processing"):
        return None  # failed / cancelled / completed end the walk without a boundary
    if obs.phase in TIMED_PHASES:
        return obs.phase
    if obs.phase is None and obs.status == "pending":
        return "queued"
    return UNKNOWN


def phase_estimates(
    create: Call, observations: Sequence[Observation]
) -> tuple[dict[str, Estimate], list[str], int]:
    """Estimate each phase's duration, the time in no known phase, and when `ready` began.

    Returns ``(estimates, unobserved, regressions)``.  ``estimates`` has an entry per
    phase (and ``unknown``) whose both ends were bracketed by observations, plus
    ``"ready_at"`` (an absolute instant) when a ready answer was seen.  The create
    answer counts as an observation of ``queued`` (the API answers ``pending`` at
    once), and the request's life starts at the create call's instant.

    A phase that moves backwards (a poll reporting an earlier phase than one already
    seen) is tolerated: the walk is kept monotone and the regression counted.  Answers
    in no known phase between two answers of the same phase were in that phase (phases
    only move forwards); elsewhere their span is time in ``unknown``, never charged to
    a phase, and a phase passed inside it is not called unobserved (it may hide there).
    """
    labels, calls, regressions = _walk(create, observations)
    runs = _runs(labels)

    estimates: dict[str, Estimate] = {}
    start = Estimate(create.instant, create.latency / 2.0)
    for k, (name, _, last) in enumerate(runs):
        if k + 1 == len(runs):
            break  # not left when the walk ended (or it is ready): censored, not timed
        end = _boundary(calls[last], calls[runs[k + 1][1]])
        duration = Estimate(end.value - start.value, start.uncertainty + end.uncertainty)
        if name != "ready":
            before = estimates.get(name, Estimate(0.0, 0.0))
            estimates[name] = Estimate(
                before.value + duration.value, before.uncertainty + duration.uncertainty
            )
        start = end

    top = max((PHASE_ORDER[n] for n in labels if n != UNKNOWN), default=0)
    unobserved = [
        name
        for index, name in enumerate(TIMED_PHASES)
        if index < top and name not in estimates and not _may_hide_in_unknown(runs, index)
    ]
    if labels[-1] == "ready":
        estimates["ready_at"] = _boundary(calls[-2], calls[-1])
    return estimates, unobserved, regressions


def _walk(
    create: Call, observations: Sequence[Observation]
) -> tuple[list[str], list[Call], int]:
    """The labels of the create's answer and each poll up to the first ready, kept monotone.

    Returns ``(labels, calls, regressions)``: one label per call, the create first.
    """
    labels: list[str] = ["queued"]
    calls: list[Call] = [create]
    regressions = 0
    highest = 0
    for obs in observations:
        name = label(obs)
        if name is None:
            break
        if name != UNKNOWN:
            index = PHASE_ORDER[name]
            if index < highest:
                regressions += 1
                index = highest
            highest = index
            name = PHASES[index]
        labels.append(name)
        calls.append(obs.call)
        if name == "ready":
            break
    _fill_sandwiched_unknowns(labels)
    return labels, calls, regressions


def _runs(labels: Sequence[str]) -> list[tuple[str, int, int]]:
    """Runs of equal labels: (label, first index, last index)."""
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(labels):
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], i)
        else:
            runs.append((name, i, i))
    return runs


def duration_intervals(
    create: Call, observations: Sequence[Observation]
) -> dict[str, tuple[float, float]]:
    """Per phase and `ready`, the interval (microseconds) that certainly holds the truth.

    See bench.core.censoring; empty unless the walk reached ready.
    """
    labels, calls, _ = _walk(create, observations)
    runs = [(name, calls[first], calls[last]) for name, first, last in _runs(labels)]
    return journey_intervals(create, runs, PHASE_ORDER, TIMED_PHASES)


def _fill_sandwiched_unknowns(labels: list[str]) -> None:
    """An unknown run between two answers of the same phase was in that phase."""
    i = 0
    while i < len(labels):
        if labels[i] != UNKNOWN:
            i += 1
            continue
        j = i
        while j < len(labels) and labels[j] == UNKNOWN:
            j += 1
        if i > 0 and j < len(labels) and labels[i - 1] == labels[j]:
            labels[i:j] = [labels[j]] * (j - i)
        i = j


def _may_hide_in_unknown(runs: Sequence[tuple[str, int, int]], index: int) -> bool:
    """Whether an unknown run lies where phase `index` would have been."""
    for k, (name, _, _) in enumerate(runs):
        if name != UNKNOWN:
            continue
        before = max((PHASE_ORDER[n] for n, _, _ in runs[:k] if n != UNKNOWN), default=-1)
        after = min((PHASE_ORDER[n] for n, _, _ in runs[k + 1 :] if n != UNKNOWN), default=99)
        if before < index < after:
            return True
    return False


def classify(observations: Sequence[Observation]) -> Outcome | None:
    """The outcome implied by the last observation, or None while the request is live."""
    if not observations:
        return None
    status = observations[-1].status
    if status == "ready":
        return Outcome.READY
    if status == "failed":
        return Outcome.FAILED
    if status == "cancelled":
        return Outcome.CANCELLED
    if status == "completed":
        return Outcome.COMPLETED_BEFORE_READY
    return None


def summarise(
    *,
    create: Call | None,
    outcome: Outcome,
    observations: Sequence[Observation] = (),
    poll_calls: Sequence[Call] = (),
    release: Call | None = None,
    http_status: int | None = None,
) -> JourneyResult:
    """Turn one journey's raw timings into metric samples (microseconds).

    ``create`` is None when the create call never got an answer.  ``poll_calls``
    holds every answered status call (including ones whose body was unusable);
    ``observations`` only the parseable ones.  The ``ready`` metric runs from the
    POST being sent to the estimated instant the request became ready (the status
    turned ready); ``ready_seen`` to the first answer a client could act on: status
    ready with the session in it.
    """
    result = JourneyResult(outcome=outcome, http_status=http_status)
    samples = result.samples
    if create is not None:
        samples["create"] = [create.latency * _US]
    if poll_calls:
        samples["poll"] = [c.latency * _US for c in poll_calls]
    if release is not None:
        samples["release"] = [release.latency * _US]
    if create is None or outcome is not Outcome.READY:
        # Phase durations are reported for journeys that reached ready, so that the
        # phase histograms describe one population (and match the ground truth's).
        if create is not None and observations:
            result.anomalies = phase_estimates(create, observations)[2]
        return result

    estimates, unobserved, regressions = phase_estimates(create, observations)
    result.anomalies = regressions
    result.unobserved = unobserved
    result.estimates = estimates
    for name in (*TIMED_PHASES, UNKNOWN):
        est = estimates.get(name)
        if est is not None:
            samples[name] = [max(est.value, 0.0) * _US]
    result.intervals = duration_intervals(create, observations)
    ready_at = estimates.get("ready_at")
    if ready_at is not None:
        samples["ready"] = [(ready_at.value - create.sent) * _US]
        ready = [o for o in observations if o.status == "ready"]
        first_ready = next((o for o in ready if o.session), ready[0])
        samples["ready_seen"] = [(first_ready.call.received - create.sent) * _US]
    return result
