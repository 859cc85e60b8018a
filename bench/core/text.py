"""Text for people: durations, percentages and one-line messages, the same everywhere.

The report, the comparison and the SLO gates all print through these, so that one
value reads the same in every output.
"""

from __future__ import annotations

import math

# (microseconds per unit, unit), largest first.
_UNITS = ((1e6, "s"), (1e3, "ms"), (1.0, "us"))


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def unit_for(us: float, digits: int = 3) -> tuple[float, str]:
    """The unit `duration` writes `us` in: (microseconds per unit, name).

    Chosen on the value rounded to `digits`, so 999,600 us reads "1 s", not
    "1e+03 ms" (what formatting in ms with `.3g` gives).
    """
    rounded = abs(_round(us, digits)) if math.isfinite(us) else 0.0
    return next(((scale, unit) for scale, unit in _UNITS if rounded >= scale), _UNITS[-1])


def number(us: float, scale: float, digits: int = 3) -> str:
    """`us` in units of `scale` microseconds, without the unit's name."""
    value = us / scale
    if math.isfinite(value) and abs(_round(value, digits)) >= 10**digits:
        # `g` would switch to 1e+03 once the rounded value has more whole digits.
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def duration(us: float, digits: int = 3) -> str:
    """`us` microseconds in the unit that suits it, to `digits` significant digits."""
    if not math.isfinite(us):
        return str(us)  # "inf" / "nan": no unit fits
    scale, unit = unit_for(us, digits)
    return f"{number(us, scale, digits)} {unit}"


def percent(fraction: float, digits: int = 3) -> str:
    """A fraction as a percentage to `digits` significant digits: 0.0123 -> "1.23 %"."""
    return f"{fraction * 100:.{digits}g} %"


def quantile_name(q: float) -> str:
    """0.95 -> "p95", 0.999 -> "p99.9"."""
    return f"p{q * 100:g}"


def short_repr(value: object, width: int = 60) -> str:
    """repr(value) cut to `width` characters: a bad value quoted in a one-line error."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def one_line(text: str) -> str:
    """Escape every character that could break or hide a line, leave the rest as typed.

    str.splitlines (and terminals) break on more than "\\n": "\\r", "\\v", "\\f",
    "\\x1c"-"\\x1e", "\\x85", "\\u2028", "\\u2029". Every non-printable character is
    shown as its Python escape instead, so the message stays one visible line.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
