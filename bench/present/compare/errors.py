"""The one error type of `bench compare`: bad usage or input, a one-line message, exit 2."""

from __future__ import annotations


class CompareError(ValueError):
    """Inputs that cannot be compared (missing, malformed, not comparable); one line."""
