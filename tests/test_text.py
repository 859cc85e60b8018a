"""bench.core.text: one-line messages, durations and percentages as people read them."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bench.core.text import duration, one_line, percent

# Every character str.splitlines treats as a line boundary.
BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def test_every_line_break_is_escaped_and_visible():
    text = "a".join(BREAKS)
    line = one_line(text)
    assert len(line.splitlines()) == 1
    escapes = [r"\n", r"\r", r"\x0b", r"\x0c", r"\x1c", r"\x1d", r"\x1e"]
    escapes += [r"\x85", r"\u2028", r"\u2029"]
    assert line == "a".join(escapes)


def test_printable_text_is_kept_as_typed():
    text = "bench: bad value 'é' for --ladder \"1,2\" \\ ok"
    assert one_line(text) == text


@given(st.text())
def test_any_text_is_one_line(text):
    line = one_line(text)
    assert len(line.splitlines()) <= 1
    assert line.isprintable()


@pytest.mark.parametrize(
    ("us", "digits", "expected"),
    [
        (0, 3, "0 us"),
        (0.5, 3, "0.5 us"),
        (999.4, 3, "999 us"),
        (999.6, 3, "1 ms"),  # rounded before the unit is chosen: never "1e+03 us"
        (999.6, 4, "999.6 us"),
        (12_345, 3, "12.3 ms"),
        (999_600, 3, "1 s"),
        (999_400, 3, "999 ms"),
        (1_600_000, 3, "1.6 s"),
        (3_600_000_000, 3, "3600 s"),  # past 3 whole digits: no "3.6e+03 s"
        (999_500_000, 3, "1000 s"),  # rounds up to 4 whole digits: no "1e+03 s"
        (9_999_500_000, 4, "10000 s"),
        (float("inf"), 3, "inf"),
        (-2_500, 3, "-2.5 ms"),
    ],
)
def test_duration(us, digits, expected):
    assert duration(us, digits) == expected


# From a nanosecond (the harness records whole microseconds) to the histograms' hour.
@given(st.floats(min_value=1e-3, max_value=3.6e9))
@example(999_500_000)  # rounds up into one more whole digit
@example(999.96)
def test_duration_never_uses_exponent_notation(us):
    assert "e" not in duration(us).split(" ")[0]


def test_percent():
    assert percent(0.0123) == "1.23 %"
    assert percent(0.25, digits=4) == "25 %"
    assert percent(0.012346, digits=4) == "1.235 %"
