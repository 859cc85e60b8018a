"""one_line: any text becomes one visible line, printable text unchanged."""

from hypothesis import given
from hypothesis import strategies as st

from bench.oneline import one_line

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
