"""Option validation into HarnessConfig: exact one-line messages, web-UI strings, cost guard."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from bench.core.ladder import Ladder
from bench.measure.harness_config import (
    API_KEY_ENV,
    DEFAULT_SESSION_CONFIG,
    ConfigError,
    HarnessConfig,
    from_options,
    is_loopback,
    load_session_config,
)

KEY = {API_KEY_ENV: "sk-test"}


def options(**overrides: Any) -> SimpleNamespace:
    """Locust-style parsed options with the harness's defaults (typed)."""
    values: dict[str, Any] = {
        "host": "",
        "ladder": "1,2,4",
        "step_time": 60.0,
        "settle": 10.0,
        "poll_interval": 0.25,
        "ready_timeout": 120.0,
        "hold": 0.0,
        "max_sessions": None,
        "release": "",
        "session_config": None,
        "results_dir": None,
        "sim_profile": None,
        "sim_time_scale": None,
        "max_poll_errors": 5,
        "protocol_error_threshold": 0.01,
        "journey_log": False,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def error(environ: dict[str, str] | None = None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        from_options(options(**overrides), environ if environ is not None else {})
    message = str(info.value)
    assert "\n" not in message and message == message.strip()
    return message


def test_defaults():
    config = from_options(options(), {})
    assert isinstance(config, HarnessConfig)
    assert config.host is None  # the embedded simulator
    assert config.ladder == Ladder((1, 2, 4), 60.0, 10.0)
    assert config.poll_interval == 0.25 and config.ready_timeout == 120.0
    assert config.hold == 0.0 and config.max_sessions is None
    assert config.release == "unlabelled"
    assert config.session_config == DEFAULT_SESSION_CONFIG
    assert config.session_config_source == "default (API doc example)"
    assert config.results_dir is None
    assert config.simulator_profile == "default" and config.simulator_time_scale is None
    assert config.max_poll_errors == 5 and config.protocol_error_threshold == 0.01
    assert config.journey_log is False
    assert config.drain_timeout == 130.0


def test_web_ui_string_values_are_accepted():
    config = from_options(
        options(
            host=" http://127.0.0.1:8089 ",
            ladder=" 2, 4 ,8",
            step_time="30",
            settle="2.5",
            poll_interval="0.5",
            ready_timeout="90",
            hold="1.5",
            max_sessions="40",
            release="v1.2.3+rc_1",
            sim_profile="fast",
            sim_time_scale="0.02",
            max_poll_errors="3",
            protocol_error_threshold="0.05",
            results_dir="reports/x",
        ),
        KEY,
    )
    assert config.host == "http://127.0.0.1:8089"
    assert config.ladder == Ladder((2, 4, 8), 30.0, 2.5)
    assert (config.poll_interval, config.ready_timeout, config.hold) == (0.5, 90.0, 1.5)
    assert config.max_sessions == 40 and isinstance(config.max_sessions, int)
    assert config.max_poll_errors == 3 and isinstance(config.max_poll_errors, int)
    assert config.simulator_time_scale == 0.02
    assert config.protocol_error_threshold == 0.05
    assert config.release == "v1.2.3+rc_1"
    assert config.simulator_profile == "fast" and config.results_dir == "reports/x"
    assert config.drain_timeout == 90.0 + 1.5 + 10.0


@pytest.mark.parametrize("value", [None, "", 0, "0"])
def test_empty_max_sessions_and_time_scale_mean_unset(value):
    config = from_options(options(max_sessions=value, sim_time_scale=value), {})
    assert config.max_sessions is None and config.simulator_time_scale is None


# --- host, cost guard, API key --------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "http://localhost:8080",
        "http://LOCALHOST",
        "http://127.0.0.1",
        "https://127.10.0.3:9",
        "http://[::1]:8080",
    ],
)
def test_loopback_host_needs_no_max_sessions(host):
    config = from_options(options(host=host), KEY)
    assert config.host == host and config.max_sessions is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("http://localhost", True),
        ("http://127.0.0.1:1", True),
        ("http://[::1]", True),
        ("http://[::2]", False),
        ("http://0.0.0.0", False),
        ("http://10.0.0.1", False),
        ("https://api.anchorbrowser.io", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
        ("not a url", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("max_sessions", [None, "", "0", 0])
def test_cost_guard_refuses_a_remote_host_without_max_sessions(max_sessions):
    assert error(KEY, host="https://api.anchorbrowser.io", max_sessions=max_sessions) == (
        "--host https://api.anchorbrowser.io is not loopback: give --max-sessions N "
        "to cap the paid sessions this run may create"
    )


def test_remote_host_with_max_sessions_and_key():
    config = from_options(options(host="https://api.anchorbrowser.io", max_sessions=25), KEY)
    assert config.host == "https://api.anchorbrowser.io" and config.max_sessions == 25


@pytest.mark.parametrize(
    ("host", "max_sessions"),
    [("https://api.anchorbrowser.io", "10"), ("http://localhost:8080", None)],
)
def test_host_needs_the_api_key(host, max_sessions):
    message = "--host given but ANCHOR_API_KEY is not set in the environment"
    assert error({}, host=host, max_sessions=max_sessions) == message
    assert error({API_KEY_ENV: ""}, host=host, max_sessions=max_sessions) == message


def test_simulator_needs_no_api_key():
    assert from_options(options(host="  "), {}).host is None


@pytest.mark.parametrize(
    "host",
    ["ftp://example.com", "example.com", "http://", "localhost:8080", "http://[::1", "http://[x]"],
)
def test_host_must_be_an_http_url(host):
    assert error(KEY, host=host, max_sessions=1) == f"--host: expected an http(s) URL, got {host!r}"


# --- numbers --------------------------------------------------------------------------


# A duration option names the forms it takes (the new duration forms' one change here).
DURATION_FORMS = " (durations such as 30s, 2m, 1h30m and 250ms work too)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"step_time": "0"}, "--step-time: must be greater than 0, got 0"),
        ({"step_time": "abc"}, "--step-time: expected a number, got 'abc'" + DURATION_FORMS),
        ({"step_time": None}, "--step-time: expected a number, got None" + DURATION_FORMS),
        ({"step_time": "nan"}, "--step-time: expected a finite number, got 'nan'"),
        ({"step_time": "inf"}, "--step-time: expected a finite number, got 'inf'"),
        ({"settle": "-1"}, "--settle: must be at least 0, got -1"),
        ({"poll_interval": "0"}, "--poll-interval: must be greater than 0, got 0"),
        ({"poll_interval": "-0.25"}, "--poll-interval: must be greater than 0, got -0.25"),
        ({"poll_interval": ""}, "--poll-interval: expected a number, got ''" + DURATION_FORMS),
        ({"ready_timeout": "-5"}, "--ready-timeout: must be greater than 0, got -5"),
        ({"hold": "-1"}, "--hold: must be at least 0, got -1"),
        ({"hold": "soon"}, "--hold: expected a number, got 'soon'" + DURATION_FORMS),
        ({"max_sessions": "-1"}, "--max-sessions: must be at least 1, got -1"),
        ({"max_sessions": "2.5"}, "--max-sessions: expected an integer, got '2.5'"),
        ({"max_sessions": "ten"}, "--max-sessions: expected a number, got 'ten'"),
        ({"max_poll_errors": "0"}, "--max-poll-errors: must be at least 1, got 0"),
        ({"max_poll_errors": "2.5"}, "--max-poll-errors: expected an integer, got '2.5'"),
        ({"sim_time_scale": "-1"}, "--sim-time-scale: must be greater than 0, got -1"),
        (
            {"protocol_error_threshold": "1.5"},
            "--protocol-error-threshold: a fraction 0..1, got 1.5",
        ),
        (
            {"protocol_error_threshold": "-0.1"},
            "--protocol-error-threshold: must be at least 0, got -0.1",
        ),
    ],
)
def test_bad_numbers(overrides, message):
    assert error(**overrides) == message


def test_threshold_edges_are_allowed():
    assert from_options(options(protocol_error_threshold="0"), {}).protocol_error_threshold == 0
    assert from_options(options(protocol_error_threshold=1), {}).protocol_error_threshold == 1


# --- ladder ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ladder": ""}, "ladder '': expected comma-separated integers, e.g. 1,2,4,8"),
        ({"ladder": "1,x"}, "ladder '1,x': 'x' is not an integer"),
        ({"ladder": "0"}, "ladder '0': every level must be at least 1, got 0"),
        (
            {"settle": "60"},
            "--settle: settle time must be >= 0 and shorter than the step time (60 s), got 60",
        ),
        (
            {"step_time": "5", "settle": 7},
            "--settle: settle time must be >= 0 and shorter than the step time (5 s), got 7",
        ),
    ],
)
def test_bad_ladder(overrides, message):
    assert error(**overrides) == message


# --- release label --------------------------------------------------------------------


@pytest.mark.parametrize("label", ["v1", "2024.10.01", "a" * 64, "rel-1_2+3"])
def test_release_labels_accepted(label):
    assert from_options(options(release=label), {}).release == label


@pytest.mark.parametrize(
    "label", ["bad label", "-v1", ".hidden", "a/b", "a" * 65, "v1\n", "v1\nv2", "é"]
)
def test_release_labels_refused(label):
    assert error(release=label) == (
        f"--release: {label!r} must be 1-64 characters of letters, digits, '.', '_', '+', '-'"
    )


# --- session config file --------------------------------------------------------------


def test_session_config_file(tmp_path):
    path = tmp_path / "session.json"
    body = {"session": {"tags": ["team-a"], "recording": {"active": False}}, "browser": {}}
    path.write_bytes(orjson.dumps(body))
    config = from_options(options(session_config=str(path)), {})
    assert config.session_config == body
    assert config.session_config_source == str(path)


def test_session_config_without_session_key_is_fine(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(b'{"browser": {"headless": {"active": true}}}')
    assert load_session_config(str(path)) == (
        {"browser": {"headless": {"active": True}}},
        str(path),
    )


def test_default_session_config():
    assert load_session_config(None) == (DEFAULT_SESSION_CONFIG, "default (API doc example)")
    assert load_session_config("")[1] == "default (API doc example)"


def test_session_config_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    assert error(session_config=str(path)) == (
        f"--session-config: cannot read {path}: No such file or directory"
    )


def test_session_config_is_a_directory(tmp_path):
    assert error(session_config=str(tmp_path)) == (
        f"--session-config: cannot read {tmp_path}: Is a directory"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{", "unexpected end of data: line 1 column 2 (char 1)"),
        (b"", "Input is a zero-length, empty document: line 1 column 1 (char 0)"),
        (b'{"a": 1,}', "trailing comma is not allowed: line 1 column 8 (char 7)"),
    ],
)
def test_session_config_bad_json(tmp_path, content, detail):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert error(session_config=str(path)) == (
        f"--session-config: {path} is not valid JSON ({detail})"
    )


@pytest.mark.parametrize("content", [b"[]", b'"session"', b"42", b"null"])
def test_session_config_not_an_object(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    assert error(session_config=str(path)) == (f"--session-config: {path} must hold a JSON object")


@pytest.mark.parametrize("session", [[], "x", None, 3])
def test_session_config_session_not_an_object(tmp_path, session):
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps({"session": session}))
    assert error(session_config=str(path)) == (
        f"--session-config: {path}: 'session' must be an object"
    )


@pytest.mark.parametrize("tags", ["a,b", None, {"a": 1}, ["ok", 3], [["nested"]]])
def test_session_config_bad_tags(tmp_path, tags):
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps({"session": {"tags": tags}}))
    assert error(session_config=str(path)) == (
        f"--session-config: {path}: 'session.tags' must be a list of strings"
    )
