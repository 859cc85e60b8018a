"""Error types shared across layers; each message is one line fit for the user (exit code 2)."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake of the user's: `bench`'s main prints it as `Error: ...` and exits with 2."""


__all__ = ["UsageError"]
