"""Durations in Locust's forms (30s, 2m, 1h30m, plain seconds) wherever the harness takes one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.core.durations import DurationError, Seconds, parse_duration
from bench.measure.harness_config import ConfigError, from_options

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("0.25", 0.25),
        (" 2.5 ", 2.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1h 30m", 5400.0),
        ("1.5m", 90.0),
        ("250ms", 0.25),
        ("800us", 0.0008),
        ("1s500ms", 1.5),
        (".5s", 0.5),
        ("-1", -1.0),  # a plain number: its range is the caller's to check
        (45, 45.0),
        (0.1, 0.1),
    ],
)
def test_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    "text", ["", "s", "abc", "1x", "30m1h", "1m1m", "1h30", "inf", "nan", "m30", "--1"]
)
def test_refused(text):
    with pytest.raises(DurationError, match="30s, 2m, 1h30m and 250ms work too"):
        parse_duration(text)


def test_infinite_is_refused():
    with pytest.raises(DurationError, match="finite"):
        parse_duration("1e999")


def test_booleans_are_not_durations():
    with pytest.raises(DurationError):
        parse_duration(True)


@given(
    h=st.integers(0, 99), m=st.integers(0, 59), s=st.integers(0, 59)
)
def test_locust_timespans_read_as_locust_reads_them(h, m, s):
    # Locust's parse_timespan: hours, minutes, seconds, each optional, in that order.
    text = "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0"
    assert parse_duration(text) == h * 3600 + m * 60 + s


def test_seconds_is_a_float_built_from_any_form():
    # Locust's web UI writes a form field back as type(current)(text).
    current = Seconds(0.25)
    assert isinstance(current, float) and current == 0.25
    assert type(current)("1m30s") == 90.0
    with pytest.raises(ValueError):
        type(current)("soon")


def _options(**overrides):
    base = dict(
        host=None, poll_interval=0.25, ladder="1,2", step_time=30.0, settle=5.0,
        ready_timeout=60.0, session_config=None, hold=0.0, max_sessions=0,
        release="r", results_dir=None, sim_profile="default", sim_time_scale=0.0,
        max_poll_errors=5, protocol_error_threshold=0.01,
    )  # fmt: skip
    base.update(overrides)
    return Namespace(**base)


def test_every_harness_duration_takes_locust_forms():
    config = from_options(
        _options(
            poll_interval="250ms", step_time="1m30s", settle="10s", ready_timeout="2m",
            hold="1.5s", progress_interval="1m",
        ),
        {},
    )  # fmt: skip
    assert config.poll_interval == 0.25
    assert config.ladder.step_time == 90.0 and config.ladder.settle == 10.0
    assert (config.ready_timeout, config.hold, config.progress_interval) == (120.0, 1.5, 60.0)


def test_a_bad_duration_is_one_line_naming_the_option():
    with pytest.raises(ConfigError, match=r"^--step-time: expected a number, got 'half a minute' "):
        from_options(_options(step_time="half a minute"), {})
    with pytest.raises(ConfigError, match="--hold: must be at least 0"):
        from_options(_options(hold="-1"), {})


def test_locust_parser_command_line_config_file_and_environment(tmp_path):
    # In a child: importing the plugin imports Locust, which monkey-patches the process.
    conf = tmp_path / "bench.conf"
    conf.write_text("step-time = 2m\nready-timeout = 1m30s\n", encoding="utf-8")
    code = (
        "import json, sys\n"
        "from locust.argument_parser import get_parser\n"
        "import bench.measure.plugin\n"
        "o = get_parser().parse_args(sys.argv[1:])\n"
        "print(json.dumps([o.step_time, o.ready_timeout, o.poll_interval, o.settle, o.hold,\n"
        "                  type(o.step_time).__name__, type(o.settle).__name__]))\n"
    )
    env = {**os.environ, "LOCUST_POLL_INTERVAL": "500ms"}
    argv = ["--config", str(conf), "--settle", "15s"]
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    step, ready, poll, settle, hold, step_type, settle_type = json.loads(out.stdout)
    assert (step, ready, poll, settle, hold) == (120.0, 90.0, 0.5, 15.0, 0.0)
    # Seconds everywhere, defaults included, so the web UI's form parses durations too.
    assert step_type == settle_type == "Seconds"
    assert not math.isnan(step)
