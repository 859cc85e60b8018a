"""The results file: layout, round trip, atomic writes, strict loading, migration, golden files."""

from __future__ import annotations

import copy
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.core.journey import METRICS, JourneyResult
from bench.core.outcomes import OUTCOMES, Outcome
from bench.record import results
from bench.record.recorder import HIGHEST_US, Recorder, merged_histogram
from bench.record.results import (
    FORMAT,
    VERSION,
    Results,
    ResultsError,
    StepInfo,
    build_document,
    dumps,
    load_results,
    parse_results,
    recorder_from_document,
    write_results,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results"
PERCENTILES = (0.0, 50.0, 90.0, 99.0, 99.9, 100.0)

RUN: dict[str, Any] = {
    "id": "20261129T080000Z-abc123",
    "release": "v1.2.3",
    "git_revision": "0123456789abcdef0123456789abcdef01234567",
    "target": {
        "kind": "simulator",
        "host": "http://127.0.0.1:8765",
        "simulator_profile": "default",
        "time_scale": 10.0,
    },
    "harness_version": "0.1.0",
    "locust_version": "2.47.0",
    "python_version": "3.11.9",
    "platform": "Linux-6.1-x86_64",
    "cpu_count": 8,
    "workers": 2,
    "started_at": "2026-11-29T08:00:00.000+00:00",
    "ended_at": "2026-11-29T08:01:30.000+00:00",
    "duration_s": 90.0,
    "exit_code": 0,
    "exit_reason": "ladder finished",
}
CONFIG: dict[str, Any] = {
    "poll_interval_s": 0.25,
    "ladder": [1, 2, 4],
    "step_time_s": 30.0,
    "settle_s": 5.0,
    "ready_timeout_s": 120.0,
    "hold_s": 0.0,
    "max_sessions": None,
    "session_config": {"session": {"proxy": {"active": True}}},
    "session_config_source": "default (API doc example)",
    "max_poll_errors": 5,
    "protocol_error_threshold": 0.01,
    "scenario_version": 1,
}
CLEANUP: dict[str, Any] = {"left_alive": 0, "left_alive_ids": [], "ended_by_sweep": 1}
STEPS = [StepInfo(i, level, 30.0 * i, 30.0 * (i + 1)) for i, level in enumerate((1, 2, 4))]


def journey(outcome: Outcome, **samples: list[float]) -> JourneyResult:
    return JourneyResult(outcome=outcome, samples=dict(samples))


def make_recorder() -> Recorder:
    """Deterministic contents exercising every field of a part."""
    rec = Recorder()
    for step in range(3):
        scale = step + 1
        for k in range(40):
            warmup = k < 5
            rec.journey_started(step, warmup)
            if k % 13 == 12:
                result = JourneyResult(Outcome.CREATE_REJECTED, http_status=429)
                result.samples = {"create": [900.0 + k]}
            elif k % 17 == 16:
                result = journey(Outcome.TIMEOUT, create=[1_000.0], poll=[5_000.0, 7_000.0])
            else:
                ready = 1_000_000.0 * scale + 25_000.0 * k
                result = journey(
                    Outcome.READY,
                    create=[2_000.0 + 10 * k],
                    queued=[ready * 0.2],
                    provisioning=[ready * 0.5],
                    configuring=[ready * 0.25],
                    unknown=[ready * 0.05],
                    connect=[150_000.0 + k], first_command=[20_000.0 + k],
                    navigate=[300_000.0 + k], poll_lag=[100.0 + k, 200.0 + k],
                    start_lag=[50.0 + k], loop_lag=[1_000.0 + k], cpu=[250_000.0 + k],
                    ready=[ready],
                    ready_seen=[ready + 120_000.0],
                    poll=[3_000.0 + k, 3_500.0 + k, 4_000.0 + k],
                    release=[8_000.0 + k],
                )
                if k == 7:
                    result.unobserved = ["configuring"]
                    result.anomalies = 1
                if k == 8:
                    result.release_failed = True
                if k == 9:
                    result.samples["poll"].append(HIGHEST_US * 2.0)  # out of range
            rec.journey_finished(step, warmup, result)
        rec.add_busy(step, 27.5 * scale)
    return rec


def make_document(recorder: Recorder | None = None, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "run": RUN,
        "config": CONFIG,
        "steps": STEPS,
        "recorder": recorder if recorder is not None else make_recorder(),
        "cleanup": CLEANUP,
    }
    kwargs.update(overrides)
    return build_document(**kwargs)


def make_small_recorder() -> Recorder:
    """Few values: what the golden fixture is built from."""
    rec = Recorder()
    for step, base in ((0, 1_200_000.0), (1, 2_400_000.0)):
        rec.journey_started(step, True)
        rec.journey_finished(step, True, journey(Outcome.READY, ready=[base * 1.5], poll=[3_000]))
        for k in range(3):
            rec.journey_started(step, False)
            rec.journey_finished(
                step, False, journey(Outcome.READY, create=[1_500.0], ready=[base + 100_000 * k])
            )
        rec.journey_started(step, False)
        rejected = JourneyResult(Outcome.CREATE_REJECTED, http_status=500)
        rec.journey_finished(step, False, rejected)
        rec.add_busy(step, 9.0 * (step + 1))
    return rec


SMALL_TIMELINE = {
    "interval_s": 10.0,
    "samples": [
        {"t_s": 0.0, "step": 0, "target": 1, "users": 1, "in_flight": 1,
         "started": 1, "ready": 0, "failed": 0},
        {"t_s": 10.0, "step": 1, "target": 2, "users": 2, "in_flight": 2,
         "started": 5, "ready": 4, "failed": 1},
        {"t_s": 20.0, "step": None, "target": 0, "users": 0, "in_flight": 0,
         "started": 4, "ready": 4, "failed": 1},
    ],
}


def make_small_document() -> dict[str, Any]:
    steps = [StepInfo(0, 1, 0.0, 10.0), StepInfo(1, 2, 10.0, 20.0)]
    config = {**CONFIG, "ladder": [1, 2], "step_time_s": 10.0, "settle_s": 2.0}
    return make_document(
        make_small_recorder(), steps=steps, config=config, timeline=SMALL_TIMELINE
    )


def write_doc(path: Path, doc: Any) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


# --- layout -------------------------------------------------------------------------


def test_document_layout():
    rec = make_recorder()
    doc = make_document(rec)
    assert doc["format"] == FORMAT == "async-session-bench/results"
    assert doc["version"] == VERSION == 3
    assert doc["timeline"] == {"interval_s": None, "samples": []}
    assert doc["histogram"] == {
        "unit": "us",
        "lowest": 1,
        "highest": 3_600_000_000,
        "significant_digits": 3,
        "encoding": "hdr-compressed-base64",
    }
    assert doc["run"] == RUN
    assert doc["cleanup"] == CLEANUP
    assert [s["index"] for s in doc["steps"]] == [0, 1, 2]
    for step, info in zip(doc["steps"], STEPS, strict=True):
        assert step["target_concurrency"] == info.target
        assert step["started_s"] == info.started
        assert step["ended_s"] == info.ended
        assert step["duration_s"] == 30.0
        assert step["busy_seconds"] == 27.5 * (info.index + 1)
        assert step["achieved_concurrency"] == round(27.5 * (info.index + 1) / 30.0, 3)
        for part in ("measured", "warmup"):
            assert set(step[part]["outcomes"]) == set(OUTCOMES)  # zeros included
            assert set(step[part]) == {
                "journeys",
                "outcomes",
                "rejections",
                "unobserved",
                "out_of_range",
                "cdp_errors",
                "anomalies",
                "release_errors",
                "histograms",
            }
        measured = step["measured"]
        assert measured["journeys"] == 35
        assert measured["outcomes"]["aborted"] == 0
        assert measured["rejections"] == {"429": 3}
        assert measured["unobserved"] == {"configuring": 1}
        assert measured["out_of_range"] == {"poll": 1}
        assert measured["anomalies"] == 1
        assert measured["release_errors"] == 1
        assert set(measured["histograms"]) == set(METRICS)
    journeys, outcomes = rec.totals()
    assert doc["totals"] == {
        "journeys": journeys,
        "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES},
        "invariant_ok": True,
        "invariant_violations": [],
    }
    assert journeys == 120


def test_step_without_data_is_written_empty():
    rec = make_small_recorder()
    steps = [StepInfo(0, 1, 0.0, 10.0), StepInfo(1, 2, 10.0, 20.0), StepInfo(2, 4, 20.0, 25.0)]
    doc = make_document(rec, steps=steps)
    last = doc["steps"][2]
    assert last["achieved_concurrency"] == 0.0
    assert last["measured"]["journeys"] == 0 and last["measured"]["histograms"] == {}
    # ...and the rebuilt recorder does not grow a step the original never had.
    assert recorder_from_document(doc).to_wire() == rec.to_wire()


def test_invariant_violation_is_recorded_and_loads(tmp_path):
    rec = make_small_recorder()
    rec.journey_started(1, False)  # started, never finished
    doc = make_document(
        rec,
        steps=[StepInfo(0, 1, 0.0, 10.0), StepInfo(1, 2, 10.0, 20.0)],
    )
    assert doc["totals"]["invariant_ok"] is False
    assert doc["totals"]["invariant_violations"] == rec.invariant_violations()
    write_results(tmp_path / "r.json", doc)
    assert load_results(tmp_path / "r.json").totals["invariant_ok"] is False


def test_build_fills_nullable_fields_with_null():
    run = {k: RUN[k] for k in ("id", "release", "started_at", "ended_at", "duration_s")}
    run["target"] = {"kind": "remote"}
    config = {k: CONFIG[k] for k in ("poll_interval_s", "ladder", "step_time_s", "settle_s")}
    doc = make_document(run=run, config=config, cleanup={})
    assert doc["run"]["git_revision"] is None and doc["run"]["target"]["host"] is None
    assert doc["config"]["session_config"] is None
    assert doc["cleanup"] == {"left_alive": None, "left_alive_ids": None, "ended_by_sweep": None}
    assert parse_results(dumps(doc)).run["workers"] is None


def test_build_keeps_extra_keys_and_converts_tuples():
    run = {**RUN, "argv": ("--ladder", "1,2,4")}
    doc = make_document(run=run)
    assert doc["run"]["argv"] == ["--ladder", "1,2,4"]


def test_build_redacts_the_session_config_again():
    session = {
        "session": {"proxy": {"type": "custom", "server": "s", "username": "u", "password": "p"}}
    }
    doc = make_document(config={**CONFIG, "session_config": session})
    proxy = doc["config"]["session_config"]["session"]["proxy"]
    assert proxy["password"] == "***" and proxy["username"] == "***"
    assert session["session"]["proxy"]["password"] == "p"  # the caller's copy is untouched


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"steps": STEPS[:2]}, "no StepInfo describes them"),
        ({"steps": [*STEPS, StepInfo(1, 2, 0.0, 1.0)]}, "duplicate step indices"),
        ({"run": {k: v for k, v in RUN.items() if k != "id"}}, "run: missing 'id'"),
        ({"run": {**RUN, "workers": "2"}}, "run.workers: expected an integer, got a string"),
        ({"run": {**RUN, "target": {"kind": "cloud"}}}, "run.target.kind"),
        ({"run": {**RUN, "started_at": "yesterday"}}, "run.started_at"),
        ({"run": {**RUN, "ended_at": "2026-11-29T09:00:00+01:00"}}, "not in UTC"),
        ({"config": {**CONFIG, "ladder": "1,2,4"}}, "config.ladder: expected a list"),
        ({"cleanup": {"left_alive": True}}, "cleanup.left_alive"),
    ],
)
def test_build_refuses_what_could_not_load(overrides, needle):
    with pytest.raises(ResultsError, match=r"^results document: ") as info:
        make_document(**overrides)
    assert needle in str(info.value)


# --- round trip ---------------------------------------------------------------------


def assert_same_histogram(actual, expected):
    assert actual.get_total_count() == expected.get_total_count()
    for p in PERCENTILES:
        assert actual.get_value_at_percentile(p) == expected.get_value_at_percentile(p)
    assert list(actual.counts) == list(expected.counts)


def test_round_trip_keeps_every_percentile(tmp_path):
    rec = make_recorder()
    path = tmp_path / "run" / "results.json"
    write_results(path, make_document(rec))
    loaded = load_results(path)
    assert loaded.path == path and loaded.source_version == VERSION
    # Config keys the caller left out (model, cdp) are written as null.
    assert loaded.run == RUN and loaded.cleanup == CLEANUP
    assert loaded.config == {**CONFIG, "model": None, "cdp": None}
    for index, step in rec.steps.items():
        for part_name in ("measured", "warmup"):
            part = step.part(part_name == "warmup")
            for metric in METRICS:
                got = loaded.histogram(index, metric, part_name)
                want = part.histograms.get(metric)
                if want is None:
                    assert got is None
                else:
                    assert_same_histogram(got, want)
    for metric in METRICS:
        assert_same_histogram(
            loaded.merged(metric),
            merged_histogram((s.measured for s in rec.steps.values()), metric),
        )
        assert_same_histogram(
            loaded.merged(metric, "warmup"),
            merged_histogram((s.warmup for s in rec.steps.values()), metric),
        )
    assert loaded.metrics() == sorted(METRICS)
    # Known values survive exactly (within HDR's 0.1 % bucket width by construction).
    assert loaded.merged("ready").get_value_at_percentile(100) == pytest.approx(
        3_000_000 + 25_000 * 39, rel=1e-3
    )


def test_round_trip_rebuilds_an_identical_recorder(tmp_path):
    rec = make_recorder()
    write_results(tmp_path / "r.json", make_document(rec))
    rebuilt = recorder_from_document(load_results(tmp_path / "r.json"))
    assert rebuilt.to_wire() == rec.to_wire()
    # ...and a document built from the rebuilt recorder is the same document.
    assert make_document(rebuilt) == make_document(rec)


def test_round_trip_of_a_recorder_merged_from_workers():
    one, two = make_recorder(), make_small_recorder()
    master = Recorder()
    master.merge_wire(one.take_delta())
    master.merge_wire(two.take_delta())
    doc = make_document(master)
    assert recorder_from_document(parse_results(dumps(doc))).to_wire() == master.to_wire()


def test_results_helpers():
    loaded = parse_results(dumps(make_small_document()))
    assert [s["index"] for s in loaded.steps] == [0, 1]
    assert loaded.histogram(0, "release") is None
    assert loaded.merged("release").get_total_count() == 0
    assert loaded.histogram(1, "ready", "warmup").get_total_count() == 1
    with pytest.raises(KeyError):
        loaded.histogram(7, "ready")
    with pytest.raises(ValueError, match="part must be"):
        loaded.histogram(0, "ready", "both")
    # Each call decodes afresh: changing one histogram cannot corrupt the next reader.
    loaded.histogram(0, "ready").record_value(5)
    assert loaded.histogram(0, "ready").get_total_count() == 3


# --- atomic writes ------------------------------------------------------------------


def big_document(label: str) -> dict[str, Any]:
    ids = [f"{label}-session-{i:07d}" for i in range(60_000)]  # a few MB of JSON
    return make_document(run={**RUN, "id": label}, cleanup={**CLEANUP, "left_alive_ids": ids})


def test_write_creates_directories_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a" / "b" / "results.json"
    doc = big_document("one")
    write_results(path, doc)
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]
    assert path.read_bytes() == dumps(doc)
    assert path.read_bytes().endswith(b"}\n")
    assert (path.stat().st_mode & 0o777) == 0o644


def test_failed_serialisation_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, make_small_document())
    before = path.read_bytes()
    broken = make_small_document()
    broken["run"]["oops"] = object()
    with pytest.raises(TypeError):
        write_results(path, broken)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_failed_rename_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_results(path, make_small_document())
    before = path.read_bytes()

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_results(path, big_document("two"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_readers_never_see_a_partial_file(tmp_path):
    path = tmp_path / "results.json"
    docs = [big_document("first"), big_document("second")]
    write_results(path, docs[0])
    expected = {d["run"]["id"] for d in docs}
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(8):
                write_results(path, docs[i % 2])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads == 0:
        data = path.read_bytes()
        assert orjson.loads(data)["run"]["id"] in expected  # whole, never a prefix
        reads += 1
    thread.join()
    assert not errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


# --- strict loading -----------------------------------------------------------------


def mutate(doc: dict[str, Any], edit) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


def _del(path: list[Any]):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _set(path: list[Any], value: Any):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _other_range() -> str:
    hist = HdrHistogram(1, 60_000_000, 2)
    hist.record_value(1_000)
    return hist.encode().decode("ascii")


OTHER_RANGE = _other_range()

BAD_DOCUMENTS: list[tuple[str, Any, str]] = [
    ("list", ["not", "results"], "is not an async-session-bench results file (JSON a list)"),
    ("no format", {"version": 1}, "is not an async-session-bench results file (no 'format')"),
    ("pyperf", {"version": "1.0", "benchmarks": []}, "(no 'format')"),
    ("other format", {"format": "pyperf", "version": 1}, "(format 'pyperf', expected"),
    ("string version", {"format": FORMAT, "version": "1"}, "must be an integer, got '1'"),
    ("bool version", {"format": FORMAT, "version": True}, "must be an integer, got True"),
    ("no version", {"format": FORMAT}, "must be an integer, got None"),
    ("version 0", {"format": FORMAT, "version": 0}, "format version 0 is not supported"),
    ("negative", {"format": FORMAT, "version": -3}, "format version -3 is not supported"),
]


def bad_v1(edit) -> dict[str, Any]:
    return mutate(make_small_document(), edit)


BAD_V1: list[tuple[str, Any, str]] = [
    ("no steps", _del(["steps"]), "missing 'steps'"),
    ("no run", _del(["run"]), "missing 'run'"),
    ("run not object", _set(["run"], []), "run: expected an object, got a list"),
    ("no run id", _del(["run", "id"]), "run: missing 'id'"),
    ("steps not list", _set(["steps"], {}), "steps: expected a list, got an object"),
    ("step not object", _set(["steps", 0], 3), "steps[0]: expected an object"),
    (
        "journeys as string",
        _set(["steps", 0, "measured", "journeys"], "3"),
        "steps[0].measured.journeys: expected an integer, got a string",
    ),
    ("negative count", _set(["steps", 1, "warmup", "anomalies"], -1), "expected a count"),
    ("float count", _set(["steps", 0, "measured", "outcomes", "ready"], 3.0), "expected an int"),
    ("bool count", _set(["steps", 0, "measured", "release_errors"], False), "got a boolean"),
    ("unknown outcome", _set(["steps", 0, "measured", "outcomes", "eaten"], 0), "unknown outcome"),
    ("no part", _del(["steps", 0, "warmup"]), "steps[0]: missing 'warmup'"),
    ("no index", _del(["steps", 1, "index"]), "steps[1]: missing 'index'"),
    ("unordered", _set(["steps", 1, "index"], 0), "increasing index order"),
    ("bad achieved", _set(["steps", 0, "achieved_concurrency"], None), "expected a number"),
    (
        "not base64",
        _set(["steps", 0, "measured", "histograms", "ready"], "not base64!"),
        "histograms.ready: not base64",
    ),
    (
        "not hdr",
        _set(["steps", 0, "measured", "histograms", "ready"], "aGVsbG8gd29ybGQ="),
        "not an HDR compressed histogram",
    ),
    (
        "other range",
        _set(["steps", 0, "measured", "histograms", "ready"], OTHER_RANGE),
        "histogram range",
    ),
    ("histogram settings", _set(["histogram", "highest"], 60_000_000), "histogram settings"),
    ("totals journeys", _set(["totals", "journeys"], 99), "totals.journeys is 99"),
    ("totals outcome", _set(["totals", "outcomes", "failed"], 1), "totals.outcomes.failed is 1"),
    ("invariant lie", _set(["totals", "invariant_ok"], False), "totals.invariant_ok is false"),
    (
        "outcomes do not add up",
        _set(["steps", 0, "measured", "journeys"], 5),
        "totals.journeys is 10 but the steps add up to 11",
    ),
    ("bad timestamp", _set(["run", "started_at"], "noon"), "run.started_at: 'noon' is not"),
    ("no cleanup", _del(["cleanup"]), "missing 'cleanup'"),
    ("ladder of strings", _set(["config", "ladder"], ["1"]), "config.ladder[0]"),
]


def assert_one_line_error(exc: ResultsError, name: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    assert name in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("label", "doc", "needle"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS]
)
def test_foreign_and_unversioned_json_is_refused(tmp_path, label, doc, needle):
    path = write_doc(tmp_path / "r.json", doc)
    with pytest.raises(ResultsError) as info:
        load_results(path)
    assert needle in str(info.value)
    assert_one_line_error(info.value, str(path))


@pytest.mark.parametrize(("label", "edit", "needle"), BAD_V1, ids=[b[0] for b in BAD_V1])
def test_malformed_documents_are_refused(tmp_path, label, edit, needle):
    path = write_doc(tmp_path / "r.json", bad_v1(edit))
    with pytest.raises(ResultsError) as info:
        load_results(path)
    assert needle in str(info.value)
    assert str(info.value).startswith(f"results file {path}: ")
    assert_one_line_error(info.value, str(path))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ResultsError, match="does not exist") as info:
        load_results(path)
    assert_one_line_error(info.value, str(path))


def test_directory(tmp_path):
    with pytest.raises(ResultsError, match="is a directory"):
        load_results(tmp_path)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"hello world", "is not JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not JSON"),
        (b'{"format": "async-session-bench/results"} trailing', "is not JSON"),
    ],
)
def test_not_json(tmp_path, data, needle):
    path = tmp_path / "r.json"
    path.write_bytes(data)
    with pytest.raises(ResultsError, match=needle) as info:
        load_results(path)
    assert_one_line_error(info.value, str(path))


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_truncated_file(tmp_path, fraction):
    data = dumps(make_small_document())
    path = tmp_path / "r.json"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ResultsError, match="is truncated") as info:
        load_results(path)
    assert_one_line_error(info.value, str(path))


def test_newer_version_is_refused_with_the_upgrade_hint(tmp_path):
    path = FIXTURES / "v99-future.json"
    with pytest.raises(ResultsError) as info:
        load_results(path)
    assert str(info.value) == (
        f"results file {path} was written by a newer harness (format version 99 > 3); "
        "upgrade async-session-bench"
    )


# --- migration ----------------------------------------------------------------------


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """The synthetic pre-release layout: no `cleanup`, `concurrency` for `achieved_concurrency`."""
    doc = dict(doc)
    doc["steps"] = [
        {("achieved_concurrency" if k == "concurrency" else k): v for k, v in step.items()}
        for step in doc["steps"]
    ]
    doc.setdefault("cleanup", {"left_alive": None, "left_alive_ids": None, "ended_by_sweep": None})
    return doc


def test_version_0_fixture_migrates(monkeypatch):
    monkeypatch.setattr(results, "_MIGRATIONS", {**results._MIGRATIONS, 0: _v0_to_v1})
    loaded = load_results(FIXTURES / "v0-prerelease.json")
    assert loaded.source_version == 0
    assert loaded.document["version"] == VERSION
    current = load_results(FIXTURES / "v1-small.json")
    assert [s["achieved_concurrency"] for s in loaded.steps] == [
        s["achieved_concurrency"] for s in current.steps
    ]
    assert loaded.cleanup["left_alive"] is None
    assert_same_histogram(loaded.merged("ready"), current.merged("ready"))
    assert recorder_from_document(loaded).to_wire() == recorder_from_document(current).to_wire()


def test_version_0_without_a_migration_is_refused():
    with pytest.raises(ResultsError, match="format version 0 is not supported"):
        load_results(FIXTURES / "v0-prerelease.json")


def test_a_migration_that_chokes_is_a_results_error(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "_MIGRATIONS", {**results._MIGRATIONS, 0: _v0_to_v1})
    path = write_doc(tmp_path / "r.json", {"format": FORMAT, "version": 0, "steps": [1]})
    with pytest.raises(ResultsError, match="cannot migrate from format version 0") as info:
        load_results(path)
    assert_one_line_error(info.value, str(path))


def test_migrated_documents_are_still_validated(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "_MIGRATIONS", {**results._MIGRATIONS, 0: _v0_to_v1})
    path = write_doc(tmp_path / "r.json", {"format": FORMAT, "version": 0, "steps": []})
    with pytest.raises(ResultsError, match="missing 'histogram'"):
        load_results(path)


# --- golden fixture -----------------------------------------------------------------


def test_golden_v1_fixture_loads():
    """v1-small.json was written by the first release's code: it must load forever."""
    loaded = load_results(FIXTURES / "v1-small.json")
    assert loaded.source_version == 1
    assert loaded.run["id"] == RUN["id"] and loaded.config["ladder"] == [1, 2]
    assert loaded.totals["journeys"] == 10
    assert loaded.totals["outcomes"]["ready"] == 8
    assert loaded.totals["outcomes"]["create_rejected"] == 2
    assert [s["achieved_concurrency"] for s in loaded.steps] == [0.9, 1.8]
    assert loaded.steps[0]["measured"]["rejections"] == {"500": 1}
    ready = loaded.merged("ready")
    assert ready.get_total_count() == 6
    # HDR's p50 of six values is the third smallest: 1.2, 1.3, [1.4], 2.4, 2.5, 2.6 s.
    assert ready.get_value_at_percentile(50) == pytest.approx(1_400_000, rel=1e-3)
    assert ready.get_value_at_percentile(100) == pytest.approx(2_600_000, rel=1e-3)
    assert loaded.histogram(1, "ready", "warmup").get_max_value() == pytest.approx(
        3_600_000, rel=1e-3
    )


def test_golden_v1_fixture_migrates_with_an_empty_timeline():
    loaded = load_results(FIXTURES / "v1-small.json")
    assert loaded.document["version"] == VERSION
    assert loaded.document["timeline"] == {"interval_s": None, "samples": []}
    current = load_results(FIXTURES / "v2-small.json")
    assert {k: v for k, v in loaded.document.items() if k not in ("timeline", "version")} == {
        k: v for k, v in current.document.items() if k not in ("timeline", "version")
    }


def test_golden_v2_fixture_keeps_its_timeline():
    loaded = load_results(FIXTURES / "v2-small.json")
    assert loaded.source_version == 2
    assert loaded.document["timeline"] == SMALL_TIMELINE


def test_golden_v2_fixture_migrates_as_a_closed_model_run_without_checks():
    loaded = load_results(FIXTURES / "v2-small.json")
    assert loaded.document["version"] == VERSION
    assert loaded.config["model"] == {
        "kind": "closed", "arrivals": None, "max_in_flight": None, "arrival_rates": None
    }  # fmt: skip
    assert loaded.config["cdp"] is None
    for step in loaded.steps:
        assert step["arrival_rate"] is None and step["generator"] is None
        assert step["measured"]["cdp_errors"] == {} == step["warmup"]["cdp_errors"]
    current = load_results(FIXTURES / "v3-small.json")
    assert recorder_from_document(loaded).to_wire() == recorder_from_document(current).to_wire()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda t: t.pop("samples"), "timeline.samples: expected a list, got null"),
        (lambda t: t.update(interval_s="1"), "timeline.interval_s: expected a number"),
        (lambda t: t["samples"][1].pop("ready"), "timeline.samples[1]: missing 'ready'"),
        (lambda t: t["samples"][0].update(failed=-1), "samples[0].failed: expected a count"),
        (lambda t: t["samples"][2].update(step="x"), "samples[2].step: expected an integer"),
        (lambda t: t["samples"].append(3), "timeline.samples[3]: expected an object"),
    ],
)
def test_bad_timeline_is_refused(tmp_path, mutate, needle):
    doc = orjson.loads(dumps(make_small_document()))
    mutate(doc["timeline"])
    path = write_doc(tmp_path / "r.json", doc)
    with pytest.raises(ResultsError, match=re.escape(needle)) as info:
        load_results(path)
    assert_one_line_error(info.value, str(path))


def test_writer_output_is_pinned():
    """If this fails on purpose: bump VERSION, keep the old golden file, add a new one."""
    assert dumps(make_small_document()) == (FIXTURES / "v3-small.json").read_bytes()


# --- fuzz ---------------------------------------------------------------------------

SMALL = dumps(make_small_document())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


SMALL_PATHS = _paths(orjson.loads(SMALL))[1:]


def assert_loads_or_results_error(data: bytes) -> None:
    try:
        loaded = parse_results(data, "fuzz.json")
    except ResultsError as exc:
        assert_one_line_error(exc, "fuzz.json")
        return
    assert isinstance(loaded, Results)
    # Whatever loads must be usable by readers without further surprises.
    for metric in loaded.metrics():
        loaded.merged(metric)
    recorder_from_document(loaded)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    assert_loads_or_results_error(data)


@FUZZ
@given(st.integers(0, len(SMALL)), st.binary(min_size=0, max_size=3), st.integers(0, 3))
def test_fuzz_byte_edits(position, insert, delete):
    assert_loads_or_results_error(SMALL[:position] + insert + SMALL[position + delete :])


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SMALL_PATHS), st.sampled_from(["delete", "replace"]), json_values
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fuzz_structural_mutations(edits):
    doc = orjson.loads(SMALL)
    for path, action, value in edits:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if action == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or reshaped this path
    assert_loads_or_results_error(orjson.dumps(doc))


@FUZZ
@given(st.integers(0, 2**40), st.sampled_from(SMALL_PATHS))
def test_fuzz_histogram_bytes(seed, _path):
    # Flip bits inside a histogram blob: the decoder must never see garbage it trusts.
    doc = orjson.loads(SMALL)
    blob = doc["steps"][seed % 2]["measured"]["histograms"]["ready"]
    raw = bytearray(results.base64.b64decode(blob))
    raw[seed % len(raw)] ^= 1 << (seed // len(raw) % 8)
    doc["steps"][seed % 2]["measured"]["histograms"]["ready"] = results.base64.b64encode(
        bytes(raw)
    ).decode()
    assert_loads_or_results_error(orjson.dumps(doc))


def regenerate_fixtures() -> None:
    """Create the fixtures that do not exist yet (never overwrite a golden file)."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    v3 = FIXTURES / "v3-small.json"
    if not v3.exists():
        write_results(v3, make_small_document())
    v1 = FIXTURES / "v1-small.json"
    v0 = FIXTURES / "v0-prerelease.json"
    if not v0.exists():
        doc = orjson.loads(v1.read_bytes())
        doc["version"] = 0
        del doc["cleanup"]
        doc["steps"] = [
            {("concurrency" if k == "achieved_concurrency" else k): v for k, v in s.items()}
            for s in doc["steps"]
        ]
        write_results(v0, doc)
    v99 = FIXTURES / "v99-future.json"
    if not v99.exists():
        write_results(v99, {"format": FORMAT, "version": 99, "hologram": {}})



def test_workers_lost_is_optional_and_checked_when_present(tmp_path):
    doc = orjson.loads(dumps(make_small_document()))
    assert "workers_lost" not in doc["run"]
    doc["run"]["workers_lost"] = ["w-1"]
    assert load_results(write_doc(tmp_path / "ok.json", doc)).run["workers_lost"] == ["w-1"]
    doc["run"]["workers_lost"] = [3]
    path = write_doc(tmp_path / "bad.json", doc)
    with pytest.raises(ResultsError, match=re.escape("run.workers_lost[0]: expected a string")):
        load_results(path)


if __name__ == "__main__":
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parent.parent))
    regenerate_fixtures()
