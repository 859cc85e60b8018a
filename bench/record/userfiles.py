"""Reading files a user names, and naming value types, for one-line error messages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_bytes(path: Path, what: str, error: type[Exception]) -> bytes:
    """The file's bytes, or `error("<what> <path> does not exist | is a directory | ...")`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read ({exc.strerror})") from None


def read_text(path: Path, what: str, error: type[Exception]) -> str:
    """The file as UTF-8 text, with the same one-line errors as `read_bytes`."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} cannot be read (not UTF-8)") from None


def type_name(value: Any, mapping: str = "an object") -> str:
    """'an integer', 'a string', ... for a parsed value; `mapping` is 'a table' in TOML."""
    # bool before int: JSON/TOML booleans are Python ints.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return mapping
    return type(value).__name__
