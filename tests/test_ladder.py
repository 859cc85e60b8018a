"""Concurrency ladder: parsing, validation, step_at, warm-up (settle)."""

from __future__ import annotations

import pytest

from bench.core.ladder import Ladder, LadderError, parse_ladder


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("1,2,4,8", (1, 2, 4, 8)),
        ("5", (5,)),
        (" 1 , 2 ,3 ", (1, 2, 3)),
        ("8,4,1", (8, 4, 1)),  # a descending ladder is allowed
        ("2,2", (2, 2)),
        (16, (16,)),  # a typed option that is already an int
    ],
)
def test_parse_ladder_valid(text, levels):
    assert parse_ladder(text) == levels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ladder '': expected comma-separated integers, e.g. 1,2,4,8"),
        ("1,,2", "ladder '1,,2': expected comma-separated integers, e.g. 1,2,4,8"),
        ("1,2,", "ladder '1,2,': expected comma-separated integers, e.g. 1,2,4,8"),
        (" ", "ladder ' ': expected comma-separated integers, e.g. 1,2,4,8"),
        ("1,a", "ladder '1,a': 'a' is not an integer"),
        ("1.5", "ladder '1.5': '1.5' is not an integer"),
        ("1;2", "ladder '1;2': '1;2' is not an integer"),
        ("1,0,2", "ladder '1,0,2': every level must be at least 1, got 0"),
        ("-2", "ladder '-2': every level must be at least 1, got -2"),
    ],
)
def test_parse_ladder_invalid(text, message):
    with pytest.raises(LadderError) as info:
        parse_ladder(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((), 60.0, 0.0), "ladder: at least one step is needed"),
        (((1,), 0.0, 0.0), "step time must be positive, got 0"),
        (((1,), -1.5, 0.0), "step time must be positive, got -1.5"),
        (
            ((1,), 60.0, -1.0),
            "settle time must be >= 0 and shorter than the step time (60 s), got -1",
        ),
        (
            ((1,), 60.0, 60.0),
            "settle time must be >= 0 and shorter than the step time (60 s), got 60",
        ),
        (
            ((1,), 30.0, 45.5),
            "settle time must be >= 0 and shorter than the step time (30 s), got 45.5",
        ),
    ],
)
def test_ladder_invalid(args, message):
    with pytest.raises(LadderError) as info:
        Ladder(*args)
    assert str(info.value) == message


def test_step_at_boundaries():
    ladder = Ladder((1, 2, 4), step_time=10.0, settle=2.0)
    assert ladder.duration == 30.0
    assert ladder.step_at(-5.0) == 0  # before the start counts as the first step
    assert ladder.step_at(0.0) == 0
    assert ladder.step_at(9.999) == 0
    assert ladder.step_at(10.0) == 1
    assert ladder.step_at(19.5) == 1
    assert ladder.step_at(20.0) == 2
    assert ladder.step_at(29.999) == 2
    assert ladder.step_at(30.0) is None  # the run is over
    assert ladder.step_at(1e9) is None


def test_step_at_fractional_step_time():
    ladder = Ladder((1, 2), step_time=0.5, settle=0.0)
    assert [ladder.step_at(t) for t in (0.0, 0.49, 0.5, 0.99, 1.0)] == [0, 0, 1, 1, None]


def test_warmup_is_the_settle_period_of_a_step():
    ladder = Ladder((1, 2), step_time=10.0, settle=2.0)
    assert ladder.is_warmup(step_started=10.0, now=10.0)
    assert ladder.is_warmup(step_started=10.0, now=11.999)
    assert not ladder.is_warmup(step_started=10.0, now=12.0)
    assert not ladder.is_warmup(step_started=10.0, now=19.0)


def test_no_settle_means_no_warmup():
    ladder = Ladder((1,), step_time=10.0, settle=0.0)
    assert not ladder.is_warmup(step_started=0.0, now=0.0)
