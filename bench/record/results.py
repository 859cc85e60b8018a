"""The versioned results file: build from a recorder, write atomically, load, validate, migrate."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from bench.core.outcomes import OUTCOMES
from bench.core.text import short_repr
from bench.record import censored
from bench.record.recorder import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    Part,
    Recorder,
    new_histogram,
)
from bench.record.redact import redact_config
from bench.record.userfiles import read_bytes, type_name

FORMAT = "async-session-bench/results"

# Format versions (bump VERSION for any change a reader must know about, add a
# migration from the previous version to _MIGRATIONS, and keep a fixture of the
# old layout in tests/fixtures/results/):
#
# 1 - first release: run metadata, configuration, histogram settings, per step
#     target and achieved concurrency, measured and warm-up parts (journeys,
#     outcomes, rejections, unobserved phases, out-of-range samples, anomalies,
#     release errors, HDR histograms as compressed base64), totals with the
#     outcome invariant, and the clean-up report.
# 2 - adds `timeline`: {"interval_s", "samples": [{"t_s", "step", "target",
#     "users", "in_flight", "started", "ready", "failed"}]}, the run sampled
#     every interval (counts per interval; see bench/record/timeline.py).  A version-1
#     file migrates with an empty timeline (interval_s null, no samples).
#
# 3 - the open model, the connect check and the generator watching itself: each
#     part gains `cdp_errors` ({"stage: kind": count}); each step gains
#     `arrival_rate` (sessions/s in the open model, null in the closed one) and
#     `generator` ({"poll_lag_p99_us", "loop_lag_p99_us", "saturated"}: a step
#     whose measured part's poll-lag or loop-lag p99 exceeds a tenth of the poll
#     interval was measured by a saturated generator);
#     config gains `model` ({"kind": "closed" | "open", "arrivals",
#     "max_in_flight", "arrival_rates"}) and `cdp` ({"check", "navigate"}); timeline
#     samples may carry `dropped`; new outcomes (connect_error, navigate_error,
#     dropped) and metrics (unknown, connect, first_command, navigate, poll_lag,
#     start_lag, loop_lag, cpu); a part may carry `censored` ({metric: "lo:hi:n
#     ..."}: the binned intervals that certainly hold each ready journey's true
#     ready and phase times, see bench/core/censoring.py), from which the report
#     estimates percentiles.  A version-2 file migrates as a closed-model run
#     without those (empty counters, null rates and generator, model closed, no
#     intervals).
#
# (Version 0 was never written by a release; tests use a synthetic version-0
# layout to exercise the migration chain.)
VERSION = 3


# version N -> function turning a version-N document into a version-(N+1) one.
# Each takes a dict that has passed only the format/version checks, so it must
# tolerate junk by raising KeyError/TypeError/ValueError (reported as ResultsError).
def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "timeline": {"interval_s": None, "samples": []}}


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    # Lenient with what is missing or mistyped: validation after the migration names it.
    out = dict(doc)
    if isinstance(doc.get("steps"), list):
        steps = []
        for step in doc["steps"]:
            if isinstance(step, dict):
                parts = {
                    name: {**step[name], "cdp_errors": {}}
                    for name in PARTS
                    if isinstance(step.get(name), dict)
                }
                step = {**step, **parts, "arrival_rate": None, "generator": None}
            steps.append(step)
        out["steps"] = steps
    if isinstance(doc.get("config"), dict):
        out["config"] = {**doc["config"], "model": dict(CLOSED_MODEL), "cdp": None}
    return out


CLOSED_MODEL: dict[str, Any] = {
    "kind": "closed", "arrivals": None, "max_in_flight": None, "arrival_rates": None
}  # fmt: skip

_MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}

HISTOGRAM_SETTINGS: dict[str, Any] = {
    "unit": "us",
    "lowest": LOWEST_US,
    "highest": HIGHEST_US,
    "significant_digits": SIGNIFICANT_DIGITS,
    "encoding": "hdr-compressed-base64",
}

PARTS: tuple[str, ...] = ("measured", "warmup")
_COUNTER_FIELDS: tuple[str, ...] = ("rejections", "unobserved", "out_of_range", "cdp_errors")
_INT_FIELDS: tuple[str, ...] = ("journeys", "anomalies", "release_errors")


class ResultsError(ValueError):
    """A results file (or document) that cannot be used; the message is one line."""


@dataclass(frozen=True)
class StepInfo:
    """When one ladder step ran (seconds since run start) and the load it aimed at."""

    index: int
    target: int  # users: the concurrency (closed model) or the in-flight cap (open)
    started: float
    ended: float
    arrival_rate: float | None = None  # sessions/s offered (open model)


def step_level(step: Mapping[str, Any]) -> float:
    """A step's load level: its arrival rate (open model) or its target concurrency."""
    rate = step.get("arrival_rate")
    return float(rate) if isinstance(rate, int | float) else step["target_concurrency"]


def is_open_model(config: Mapping[str, Any]) -> bool:
    model = config.get("model")
    return isinstance(model, Mapping) and model.get("kind") == "open"


# A step whose poll-lag p99 exceeds this share of the poll interval was measured by a
# saturated generator (issue 11): its own lateness would read as the target's latency.
SATURATION_SHARE = 0.1


def generator_health(measured: Part, poll_interval_s: float | None) -> dict[str, Any]:
    """Poll-lag and loop-lag p99 of a step's measured part, and whether they mark saturation.

    Two signals, because one misses what the other sees.  Poll lag (send minus schedule)
    is blind to a stall while a reply is read: the next poll is scheduled from the late
    receive, and the stall reads as the target's latency.  Loop lag (how late the event
    loop wakes a sleeper) sees every stall, the process's own or the kernel's, but not
    which polls it hit.  Either p99 above a tenth of the interval marks the step.

    Only the measured part is judged: its journeys are the step's figures.  The warm-up
    holds the step's start (users made, connections opened, a burst of first creates),
    which keeps the loop busy for tens of milliseconds once and is why warm-up exists.
    """
    p99 = {
        key: int(hist.get_value_at_percentile(99.0))
        for key, hist in (
            ("poll_lag_p99_us", measured.histograms.get("poll_lag")),
            ("loop_lag_p99_us", measured.histograms.get("loop_lag")),
        )
        if hist is not None and hist.get_total_count() > 0
    }
    doc: dict[str, Any] = {"poll_lag_p99_us": None, "loop_lag_p99_us": None, **p99}
    limit = SATURATION_SHARE * poll_interval_s * 1e6 if poll_interval_s else None
    doc["saturated"] = None if limit is None or not p99 else any(v > limit for v in p99.values())
    return doc


# --- schema -------------------------------------------------------------------------
#
# Pass-through sections are checked key by key: (key, accepted types, nullable).
# Nullable keys that the caller leaves out are written as null, so a forgotten
# detail never costs the end-of-run results; the non-nullable ones are what a
# report cannot do without.  Unknown extra keys are kept and not checked.

_STR = (str,)
_INT = (int,)
_NUM = (int, float)

_RUN_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("id", _STR, False),
    ("release", _STR, False),
    ("git_revision", _STR, True),
    ("target", (dict,), False),
    ("harness_version", _STR, True),
    ("locust_version", _STR, True),
    ("python_version", _STR, True),
    ("platform", _STR, True),
    ("cpu_count", _INT, True),
    ("workers", _INT, True),
    ("started_at", _STR, False),
    ("ended_at", _STR, False),
    ("duration_s", _NUM, False),
    ("exit_code", _INT, True),
    ("exit_reason", _STR, True),
)
_TARGET_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("kind", _STR, False),
    ("host", _STR, True),
    ("simulator_profile", _STR, True),
    ("time_scale", _NUM, True),
)
_TARGET_KINDS = ("simulator", "remote")
_CONFIG_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("poll_interval_s", _NUM, False),
    ("ladder", (list,), False),
    ("step_time_s", _NUM, False),
    ("settle_s", _NUM, False),
    ("ready_timeout_s", _NUM, True),
    ("hold_s", _NUM, True),
    ("max_sessions", _INT, True),
    ("session_config", (dict,), True),
    ("session_config_source", _STR, True),
    ("max_poll_errors", _INT, True),
    ("protocol_error_threshold", _NUM, True),
    ("scenario_version", (int, str), True),
    ("model", (dict,), True),  # null: the closed model (CLOSED_MODEL)
    ("cdp", (dict,), True),  # null: no connect check
)
_CLEANUP_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("left_alive", _INT, True),
    ("left_alive_ids", (list,), True),
    ("ended_by_sweep", _INT, True),
)


class _Invalid(Exception):
    """Internal: a validation problem, turned into ResultsError with the file's name."""


def _is(value: Any, types: tuple[type, ...]) -> bool:
    # JSON booleans are Python ints: never let true pass for a count.
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


_TYPE_WORDS = {
    _STR: "a string",
    _INT: "an integer",
    _NUM: "a number",
    (dict,): "an object",
    (list,): "a list",
    (int, str): "an integer or a string",
    (bool,): "a boolean",
}


def _expect(value: Any, types: tuple[type, ...], where: str, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not _is(value, types):
        wanted = _TYPE_WORDS.get(types, "/".join(t.__name__ for t in types))
        raise _Invalid(f"{where}: expected {wanted}, got {type_name(value)}")


def _key(name: str) -> str:
    """A key from the file, fit for a one-line message."""
    return name if name.isidentifier() and len(name) <= 40 else short_repr(name, 40)


def _count(value: Any, where: str) -> int:
    _expect(value, _INT, where)
    if value < 0:
        raise _Invalid(f"{where}: expected a count (>= 0), got {value}")
    return value


def _section(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    if key not in doc:
        raise _Invalid(f"missing '{key}'")
    value = doc[key]
    _expect(value, (dict,), key)
    return value


def _check_fields(
    section: dict[str, Any],
    fields: Sequence[tuple[str, tuple[type, ...], bool]],
    where: str,
    *,
    fill: bool,
) -> None:
    for key, types, nullable in fields:
        if key not in section:
            if fill and nullable:
                section[key] = None
                continue
            raise _Invalid(f"{where}: missing '{key}'")
        _expect(section[key], types, f"{where}.{key}", nullable)


def _check_timestamp(value: str, where: str) -> None:
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{where}: {value[:40]!r} is not an ISO 8601 timestamp") from None
    if stamp.utcoffset() != dt.timedelta(0):
        raise _Invalid(f"{where}: {value[:40]!r} is not in UTC")


def _check_run(run: dict[str, Any], *, fill: bool) -> None:
    _check_fields(run, _RUN_FIELDS, "run", fill=fill)
    if not run["id"]:
        raise _Invalid("run.id: must not be empty")
    _check_fields(run["target"], _TARGET_FIELDS, "run.target", fill=fill)
    if run["target"]["kind"] not in _TARGET_KINDS:
        raise _Invalid(
            f"run.target.kind: expected 'simulator' or 'remote', got {run['target']['kind'][:40]!r}"
        )
    # Optional (written since the worker-loss handling): ids of workers lost mid-run.
    if "workers_lost" in run:
        _expect(run["workers_lost"], (list,), "run.workers_lost")
        for i, item in enumerate(run["workers_lost"]):
            _expect(item, _STR, f"run.workers_lost[{i}]")
    _check_timestamp(run["started_at"], "run.started_at")
    _check_timestamp(run["ended_at"], "run.ended_at")


def _check_config(config: dict[str, Any], *, fill: bool) -> None:
    _check_fields(config, _CONFIG_FIELDS, "config", fill=fill)
    for i, level in enumerate(config["ladder"]):
        _expect(level, _INT, f"config.ladder[{i}]")


_TIMELINE_COUNTS: tuple[str, ...] = ("target", "users", "in_flight", "started", "ready", "failed")


def _check_timeline(timeline: dict[str, Any]) -> None:
    _expect(timeline.get("interval_s"), _NUM, "timeline.interval_s", nullable=True)
    samples = timeline.get("samples")
    _expect(samples, (list,), "timeline.samples")
    for i, sample in enumerate(samples):
        where = f"timeline.samples[{i}]"
        _expect(sample, (dict,), where)
        _check_fields(sample, (("t_s", _NUM, False), ("step", _INT, True)), where, fill=False)
        for key in _TIMELINE_COUNTS:
            if key not in sample:
                raise _Invalid(f"{where}: missing '{key}'")
            _count(sample[key], f"{where}.{key}")


def _check_cleanup(cleanup: dict[str, Any], *, fill: bool) -> None:
    _check_fields(cleanup, _CLEANUP_FIELDS, "cleanup", fill=fill)
    for i, item in enumerate(cleanup["left_alive_ids"] or ()):
        _expect(item, _STR, f"cleanup.left_alive_ids[{i}]")


# --- histogram blobs ----------------------------------------------------------------
#
# hdrh trusts a blob's own header (range, precision, lengths) and would allocate
# whatever it claims, so a corrupt file could cost gigabytes or crash the C decoder.
# Check the envelope ourselves first: base64, the V2 cookies, the lengths, and that
# the histogram settings are exactly ours, with a bounded decompression.

_EXT_HEADER = struct.Struct(">II")  # cookie, compressed length
_PAYLOAD_HEADER = struct.Struct(">IIIIQQd")  # cookie, payload length, offset, digits, lo, hi, ratio
_COMPRESSION_COOKIE_BASE = 0x1C849304
_ENCODING_COOKIE_BASE = 0x1C849303
# LEB128/ZigZag needs at most 9 bytes per counter.
_MAX_PAYLOAD = _PAYLOAD_HEADER.size + new_histogram().counts_len * 9


def _decode_blob(encoded: Any, where: str) -> HdrHistogram:
    _expect(encoded, _STR, where)
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise _Invalid(f"{where}: not base64") from None
    if len(raw) < _EXT_HEADER.size:
        raise _Invalid(f"{where}: histogram blob too short")
    cookie, length = _EXT_HEADER.unpack_from(raw)
    if cookie & ~0xF0 != _COMPRESSION_COOKIE_BASE or length != len(raw) - _EXT_HEADER.size:
        raise _Invalid(f"{where}: not an HDR compressed histogram")
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[_EXT_HEADER.size :], _MAX_PAYLOAD + 1)
    except zlib.error:
        raise _Invalid(f"{where}: corrupt histogram (bad compression)") from None
    if not inflater.eof or inflater.unconsumed_tail or len(payload) > _MAX_PAYLOAD:
        raise _Invalid(f"{where}: corrupt histogram (bad length)")
    if len(payload) < _PAYLOAD_HEADER.size:
        raise _Invalid(f"{where}: corrupt histogram (short payload)")
    cookie, payload_len, offset, digits, lowest, highest, _ = _PAYLOAD_HEADER.unpack_from(payload)
    if (
        cookie & ~0xF0 != _ENCODING_COOKIE_BASE
        or payload_len != len(payload) - _PAYLOAD_HEADER.size
    ):
        raise _Invalid(f"{where}: corrupt histogram (bad payload header)")
    if (lowest, highest, digits, offset) != (LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS, 0):
        raise _Invalid(
            f"{where}: histogram range {lowest}..{highest} at {digits} digits is not "
            f"{LOWEST_US}..{HIGHEST_US} at {SIGNIFICANT_DIGITS}"
        )
    try:
        histogram = HdrHistogram.decode(encoded.encode("ascii"))
    except Exception as exc:  # hdrh raises assorted types (its own, ValueError, ...)
        raise _Invalid(f"{where}: undecodable histogram ({type(exc).__name__})") from None
    # ZigZag lets a corrupt stream decode to "negative" (huge unsigned) counts.
    if histogram.get_total_count() >= 2**62:
        raise _Invalid(f"{where}: corrupt histogram (impossible counts)")
    return histogram


# --- the document -------------------------------------------------------------------


def _check_part(part: Any, where: str) -> dict[str, int]:
    """Validate one measured/warm-up part; return its outcome counts (normalised)."""
    _expect(part, (dict,), where)
    for key in _INT_FIELDS:
        if key not in part:
            raise _Invalid(f"{where}: missing '{key}'")
        _count(part[key], f"{where}.{key}")
    if "outcomes" not in part:
        raise _Invalid(f"{where}: missing 'outcomes'")
    outcomes = part["outcomes"]
    _expect(outcomes, (dict,), f"{where}.outcomes")
    for name, n in outcomes.items():
        if name not in OUTCOMES:
            raise _Invalid(f"{where}.outcomes: unknown outcome {short_repr(name, 40)}")
        _count(n, f"{where}.outcomes.{name}")
    # An outcome this release knows and an older file does not is a zero there.
    for name in OUTCOMES:
        outcomes.setdefault(name, 0)
    for key in _COUNTER_FIELDS:
        if key not in part:
            raise _Invalid(f"{where}: missing '{key}'")
        counter = part[key]
        _expect(counter, (dict,), f"{where}.{key}")
        for name, n in counter.items():
            _count(n, f"{where}.{key}.{_key(name)}")
    if "histograms" not in part:
        raise _Invalid(f"{where}: missing 'histograms'")
    histograms = part["histograms"]
    _expect(histograms, (dict,), f"{where}.histograms")
    for metric, blob in histograms.items():
        _decode_blob(blob, f"{where}.histograms.{_key(metric)}")
    # Optional (written since interval-censored recording): see bench.record.censored.
    if "censored" in part:
        problem = censored.check_wire(part["censored"], f"{where}.censored")
        if problem is not None:
            raise _Invalid(problem)
    return outcomes


def _check_steps(steps: Any) -> tuple[int, dict[str, int], bool]:
    """Validate the steps; return (journeys, outcome counts, whether the invariant holds)."""
    _expect(steps, (list,), "steps")
    journeys = 0
    totals = dict.fromkeys(OUTCOMES, 0)
    invariant_ok = True
    previous = -1
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        _expect(step, (dict,), where)
        for key in ("index", "target_concurrency"):
            if key not in step:
                raise _Invalid(f"{where}: missing '{key}'")
            _count(step[key], f"{where}.{key}")
        if step["index"] <= previous:
            raise _Invalid(f"{where}.index: steps must be in increasing index order")
        previous = step["index"]
        for key in ("achieved_concurrency", "started_s", "ended_s", "duration_s", "busy_seconds"):
            if key not in step:
                raise _Invalid(f"{where}: missing '{key}'")
            _expect(step[key], _NUM, f"{where}.{key}")
        if step["duration_s"] < 0 or step["busy_seconds"] < 0 or step["achieved_concurrency"] < 0:
            raise _Invalid(f"{where}: durations and concurrency must not be negative")
        _check_fields(
            step, (("arrival_rate", _NUM, True), ("generator", (dict,), True)), where, fill=True
        )
        rate = step["arrival_rate"]
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise _Invalid(f"{where}.arrival_rate: must be a positive number, got {rate!r}")
        for name in PARTS:
            if name not in step:
                raise _Invalid(f"{where}: missing '{name}'")
            outcomes = _check_part(step[name], f"{where}.{name}")
            started = step[name]["journeys"]
            finished = sum(outcomes.values())
            invariant_ok = invariant_ok and started == finished
            journeys += started
            for outcome, n in outcomes.items():
                totals[outcome] += n
    return journeys, totals, invariant_ok


def _check_totals(totals: dict[str, Any], steps: tuple[int, dict[str, int], bool]) -> None:
    journeys, outcomes, invariant_ok = steps
    for key in ("journeys", "outcomes", "invariant_ok", "invariant_violations"):
        if key not in totals:
            raise _Invalid(f"totals: missing '{key}'")
    _count(totals["journeys"], "totals.journeys")
    _expect(totals["outcomes"], (dict,), "totals.outcomes")
    _expect(totals["invariant_ok"], (bool,), "totals.invariant_ok")
    _expect(totals["invariant_violations"], (list,), "totals.invariant_violations")
    for i, item in enumerate(totals["invariant_violations"]):
        _expect(item, _STR, f"totals.invariant_violations[{i}]")
    if totals["journeys"] != journeys:
        raise _Invalid(
            f"totals.journeys is {totals['journeys']} but the steps add up to {journeys}"
        )
    claimed = totals["outcomes"]
    for name, n in claimed.items():
        if name not in OUTCOMES:
            raise _Invalid(f"totals.outcomes: unknown outcome {short_repr(name, 40)}")
        _count(n, f"totals.outcomes.{name}")
    for name in OUTCOMES:
        claimed.setdefault(name, 0)
        if claimed[name] != outcomes[name]:
            raise _Invalid(
                f"totals.outcomes.{name} is {claimed[name]} but the steps add up to "
                f"{outcomes[name]}"
            )
    if totals["invariant_ok"] != invariant_ok:
        raise _Invalid(
            f"totals.invariant_ok is {str(totals['invariant_ok']).lower()} but the steps' "
            "outcomes say otherwise"
        )
    if invariant_ok == bool(totals["invariant_violations"]):
        raise _Invalid("totals.invariant_violations disagrees with totals.invariant_ok")


def _validate(doc: dict[str, Any], *, fill: bool = False) -> None:
    """Check a current-version document in place (raises _Invalid).

    ``fill`` writes null for nullable pass-through keys the caller left out (build
    time only: a loaded file must be complete).  Outcome maps are always completed
    with zeros for outcomes this release knows and the file does not.
    """
    settings = _section(doc, "histogram")
    if settings != HISTOGRAM_SETTINGS:
        raise _Invalid(
            "histogram settings differ from this harness's "
            f"({HIGHEST_US} us highest, {SIGNIFICANT_DIGITS} digits, compressed base64)"
        )
    _check_run(_section(doc, "run"), fill=fill)
    _check_config(_section(doc, "config"), fill=fill)
    _check_cleanup(_section(doc, "cleanup"), fill=fill)
    _check_timeline(_section(doc, "timeline"))
    if "steps" not in doc:
        raise _Invalid("missing 'steps'")
    _check_totals(_section(doc, "totals"), _check_steps(doc["steps"]))


# --- building -----------------------------------------------------------------------


def _part_document(part: Part) -> dict[str, Any]:
    wire = part.to_wire()
    # Every outcome is written, zeros included, so a reader never guesses at absence.
    wire["outcomes"] = {name: int(part.outcomes.get(name, 0)) for name in OUTCOMES}
    return wire


def build_document(
    *,
    run: Mapping[str, Any],
    config: Mapping[str, Any],
    steps: Sequence[StepInfo],
    recorder: Recorder,
    cleanup: Mapping[str, Any],
    timeline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the results document (pure).

    Raises ResultsError when the pieces cannot make a loadable file: a required
    run/config field missing or mistyped, duplicate step indices, or recorded data
    for a step no StepInfo describes.  Nullable fields left out are written as null.
    The session config is redacted again here (idempotent) as a last guard for the key.
    """
    run_doc = _plain(run)
    config_doc = _plain(config)
    if isinstance(config_doc.get("session_config"), Mapping):
        config_doc["session_config"] = redact_config(config_doc["session_config"])
    infos = sorted(steps, key=lambda s: s.index)
    indices = [s.index for s in infos]
    if len(set(indices)) != len(indices):
        raise ResultsError(f"results document: duplicate step indices in {indices}")
    orphans = sorted(set(recorder.steps) - set(indices))
    if orphans:
        raise ResultsError(
            f"results document: the recorder holds data for step(s) {orphans} "
            "but no StepInfo describes them"
        )
    step_docs = []
    for info in infos:
        step = recorder.steps.get(info.index)
        measured = step.measured if step else Part()
        warmup = step.warmup if step else Part()
        busy = step.busy_seconds if step else 0.0
        duration = info.ended - info.started
        poll = config_doc.get("poll_interval_s")
        step_docs.append(
            {
                "index": info.index,
                "target_concurrency": info.target,
                "arrival_rate": info.arrival_rate,
                "generator": generator_health(
                    measured, poll if isinstance(poll, int | float) else None
                ),
                "achieved_concurrency": round(busy / duration, 3) if duration > 0 else 0.0,
                "started_s": round(info.started, 6),
                "ended_s": round(info.ended, 6),
                "duration_s": round(duration, 6),
                "busy_seconds": busy,
                "measured": _part_document(measured),
                "warmup": _part_document(warmup),
            }
        )
    journeys, outcomes = recorder.totals()
    violations = recorder.invariant_violations()
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "run": run_doc,
        "config": config_doc,
        "histogram": dict(HISTOGRAM_SETTINGS),
        "steps": step_docs,
        "totals": {
            "journeys": journeys,
            "outcomes": {name: int(outcomes.get(name, 0)) for name in OUTCOMES},
            "invariant_ok": not violations,
            "invariant_violations": violations,
        },
        "cleanup": _plain(cleanup),
        "timeline": _plain(timeline or {"interval_s": None, "samples": []}),
    }
    try:
        _validate(doc, fill=True)
    except _Invalid as exc:
        raise ResultsError(f"results document: {exc}") from None
    return doc


def _plain(value: Any) -> Any:
    """A JSON-shaped deep copy: mappings to dicts, tuples to lists (so checks see one shape)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- writing ------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600 files; results are meant to be shared and hold no secret.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    # Make the rename itself durable (POSIX; not possible on Windows).
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def dumps(document: Mapping[str, Any]) -> bytes:
    """The file's bytes: sorted keys and indented, so files diff well."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_results(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Write `document` to `path` atomically (creating parent directories).

    Serialisation happens before anything touches the disk, so a document orjson
    cannot encode (TypeError) leaves an existing file as it was.
    """
    _write_atomic(Path(path), dumps(document))


# --- loading ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Results:
    """A loaded, validated, current-version results document.  Treat it as read-only."""

    document: Mapping[str, Any]
    path: Path | None = None
    # The version the file was written in, before migration.
    source_version: int = VERSION
    _by_index: dict[int, dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._by_index.update({step["index"]: step for step in self.document["steps"]})

    @property
    def run(self) -> Mapping[str, Any]:
        return self.document["run"]

    @property
    def config(self) -> Mapping[str, Any]:
        return self.document["config"]

    @property
    def cleanup(self) -> Mapping[str, Any]:
        return self.document["cleanup"]

    @property
    def totals(self) -> Mapping[str, Any]:
        return self.document["totals"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.document["steps"]

    def metrics(self, part: str = "measured") -> list[str]:
        """Metrics with a histogram in any step, sorted."""
        _check_part_name(part)
        return sorted({m for step in self.steps for m in step[part]["histograms"]})

    def histogram(
        self, step_index: int, metric: str, part: str = "measured"
    ) -> HdrHistogram | None:
        """A fresh histogram of `metric` in the step with that `index`; None if none was recorded.

        Raises KeyError for a step index the file does not hold.
        """
        _check_part_name(part)
        blob = self._by_index[step_index][part]["histograms"].get(metric)
        return None if blob is None else HdrHistogram.decode(blob.encode("ascii"))

    def merged(self, metric: str, part: str = "measured") -> HdrHistogram:
        """`metric` over all steps (an empty histogram when no step recorded it)."""
        total = new_histogram()
        for hist in self._each(metric, part):
            total.add(hist)
        return total

    def _each(self, metric: str, part: str) -> Iterator[HdrHistogram]:
        for index in self._by_index:
            hist = self.histogram(index, metric, part)
            if hist is not None:
                yield hist


def _check_part_name(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be 'measured' or 'warmup', got {part!r}")


def parse_results(data: bytes, name: str = "<bytes>") -> Results:
    """Parse, check and migrate a results file's bytes (pure; `name` labels errors)."""
    label = f"results file {name}"
    if not data.strip():
        raise ResultsError(f"{label} is empty")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson stops at the end of the input when the text was cut short.
        if exc.pos >= len(data.rstrip()) - 1 and data.lstrip()[:1] in (b"{", b"["):
            raise ResultsError(f"{label} is truncated (JSON ends early)") from None
        raise ResultsError(f"{label} is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise ResultsError(
            f"{label} is not an async-session-bench results file (JSON {type_name(doc)})"
        )
    if "format" not in doc:
        raise ResultsError(f"{label} is not an async-session-bench results file (no 'format')")
    if doc["format"] != FORMAT:
        raise ResultsError(
            f"{label} is not an async-session-bench results file "
            f"(format {short_repr(doc['format'], 40)}, expected {FORMAT!r})"
        )
    version = doc.get("version")
    if not _is(version, _INT):
        raise ResultsError(
            f"{label}: format version must be an integer, got {short_repr(version, 40)}"
        )
    if version > VERSION:
        raise ResultsError(
            f"{label} was written by a newer harness (format version {version} > {VERSION}); "
            "upgrade async-session-bench"
        )
    source_version = version
    while version < VERSION:
        migrate = _MIGRATIONS.get(version)
        if migrate is None:
            raise ResultsError(
                f"{label}: format version {version} is not supported "
                f"(no migration to version {VERSION})"
            )
        try:
            doc = migrate(doc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ResultsError(
                f"{label}: cannot migrate from format version {version} "
                f"({type(exc).__name__}: {short_repr(str(exc), 40)})"
            ) from None
        if not isinstance(doc, dict):
            raise ResultsError(f"{label}: migration from format version {version} failed")
        version += 1
        doc["version"] = version
    try:
        _validate(doc)
    except _Invalid as exc:
        raise ResultsError(f"{label}: {exc}") from None
    return Results(document=doc, path=None, source_version=source_version)


def load_results(path: str | os.PathLike[str]) -> Results:
    """Read and validate a results file; every problem is a one-line ResultsError."""
    path = Path(path)
    data = read_bytes(path, "results file", ResultsError)
    results = parse_results(data, str(path))
    return Results(document=results.document, path=path, source_version=results.source_version)


# --- back to live objects -----------------------------------------------------------


def recorder_from_document(doc: Mapping[str, Any] | Results) -> Recorder:
    """Rebuild the Recorder a document was built from (its to_wire() matches the original's).

    Steps that hold nothing at all are skipped, as the original recorder never had them.
    """
    document = doc.document if isinstance(doc, Results) else doc
    recorder = Recorder()
    wire: dict[str, Any] = {}
    for step in document["steps"]:
        parts = {name: _part_wire(step[name]) for name in PARTS}
        busy = float(step["busy_seconds"])
        if busy == 0 and all(_wire_is_empty(p) for p in parts.values()):
            continue
        wire[str(step["index"])] = {**parts, "busy_seconds": busy}
    recorder.merge_wire(wire)
    return recorder


def _part_wire(part: Mapping[str, Any]) -> dict[str, Any]:
    # Zero counts exist in the file for readability only; a live Counter has no such keys.
    def nonzero(counter: Mapping[str, int]) -> dict[str, int]:
        return {k: v for k, v in counter.items() if v}

    return {
        "histograms": dict(part["histograms"]),
        "journeys": part["journeys"],
        "outcomes": nonzero(part["outcomes"]),
        "rejections": nonzero(part["rejections"]),
        "unobserved": nonzero(part["unobserved"]),
        "out_of_range": nonzero(part["out_of_range"]),
        "cdp_errors": nonzero(part["cdp_errors"]),
        "anomalies": part["anomalies"],
        "release_errors": part["release_errors"],
        "censored": dict(part.get("censored") or {}),
    }


def _wire_is_empty(part: Mapping[str, Any]) -> bool:
    keys = ("histograms", "outcomes", *_COUNTER_FIELDS, *_INT_FIELDS)
    return not any(part[k] for k in keys) and not part.get("censored")


__all__ = [
    "FORMAT",
    "HISTOGRAM_SETTINGS",
    "SATURATION_SHARE",
    "VERSION",
    "Results",
    "ResultsError",
    "StepInfo",
    "build_document",
    "dumps",
    "is_open_model",
    "load_results",
    "parse_results",
    "recorder_from_document",
    "step_level",
    "write_results",
]
