"""Pure validation of request inputs: the create body, list query strings, ids."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

MAX_BODY_BYTES = 1024 * 1024

# Types of the create-body fields the spec defines. Only known fields are checked:
# unknown ones are accepted and ignored, because the real API is permissive and the
# spec's schemas do not forbid additional properties.
_BOOL, _INT, _STR = "bool", "int", "str"
_STR_LIST, _OBJ_LIST = "str_list", "obj_list"
_ACTIVE = {"active": _BOOL}

_SHAPE: dict[str, Any] = {
    "session": {
        "initial_url": _STR,
        "tags": _STR_LIST,
        "recording": _ACTIVE,
        "proxy": {"active": _BOOL, "type": _STR, "country_code": _STR, "region": _STR,
                  "city": _STR, "server": _STR, "username": _STR, "password": _STR},
        "timeout": {"max_duration": _INT, "idle_timeout": _INT},
        "live_view": {"read_only": _BOOL, "one_time_url": _BOOL},
        "x402": _BOOL,
    },
    "browser": {
        "profile": {"name": _STR, "persist": _BOOL},
        "adblock": _ACTIVE,
        "popup_blocker": _ACTIVE,
        "captcha_solver": _ACTIVE,
        "headless": _ACTIVE,
        "viewport": {"width": _INT, "height": _INT},
        "fullscreen": _ACTIVE,
        "pdf_viewer": _ACTIVE,
        "p2p_download": _ACTIVE,
        "extensions": _STR_LIST,
        "disable_web_security": _ACTIVE,
        "extra_stealth": _ACTIVE,
    },
    "integrations": _OBJ_LIST,
    "identities": _OBJ_LIST,
}

_BOOL_WORDS = {"true": True, "false": False}
_LIST_BOOLEANS = ("task_initiated", "playground", "proxy", "extra_stealth")
_LIST_STRINGS = ("tags", "domains", "batch_id", "profile_name", "created_from", "created_to")


class InputError(ValueError):
    """The client sent something the API rejects with 400 (the message says what)."""


def parse_create_body(raw: bytes) -> dict[str, Any]:
    """Parse and type-check a POST /v1/sessions/async body; an empty body means `{}`."""
    if not raw.strip():
        return {}  # the spec marks the request body optional
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError("Request body must be a JSON object")
    _check(body, _SHAPE, "")
    timeout = (body.get("session") or {}).get("timeout") or {}
    for key in ("max_duration", "idle_timeout"):
        value = timeout.get(key)
        # Minutes; -1 disables the limit, other values below 1 mean nothing.
        if value is not None and value != -1 and value < 1:
            raise InputError(f"session.timeout.{key} must be a positive number of minutes or -1")
    return body


def _check(value: Mapping[str, Any], shape: Mapping[str, Any], prefix: str) -> None:
    for key, expected in shape.items():
        if key not in value or value[key] is None:
            continue
        _check_one(value[key], expected, f"{prefix}{key}")


def _check_one(value: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            raise InputError(f"{where} must be an object")
        _check(value, expected, where + ".")
    elif expected == _BOOL:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be a boolean")
    elif expected == _INT:
        # bool is an int subclass in Python, but `true` is no number of minutes.
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer")
    elif expected == _STR:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string")
    elif expected == _STR_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where} must be a list of strings")
    elif expected == _OBJ_LIST and (
        not isinstance(value, list) or not all(isinstance(v, dict) for v in value)
    ):
        raise InputError(f"{where} must be a list of objects")


def parse_list_query(query: Mapping[str, str], keys: list[str]) -> dict[str, Any]:
    """Check GET /v1/sessions/all/status's query; returns tags, created bounds, playground.

    `keys` lists every key as sent (repeats too), so a repeated parameter can be refused rather than
    silently picking one of its values.
    """
    seen: set[str] = set()
    for key in keys:
        if key in seen and key in _LIST_STRINGS + _LIST_BOOLEANS:
            raise InputError(f"Query parameter {key!r} given more than once")
        seen.add(key)
    out: dict[str, Any] = {"tags": [], "created_from": None, "created_to": None, "playground": None}
    tags = query.get("tags")
    if tags is not None:
        out["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    for key in ("created_from", "created_to"):
        text = query.get(key)
        if text is not None:
            out[key] = _parse_time(key, text)
    for key in _LIST_BOOLEANS:
        text = query.get(key)
        if text is not None:
            if text.lower() not in _BOOL_WORDS:
                raise InputError(f"Query parameter {key!r} must be true or false")
            if key == "playground":
                out["playground"] = _BOOL_WORDS[text.lower()]
    return out


def _parse_time(key: str, text: str) -> float:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"Query parameter {key!r} must be an ISO 8601 timestamp") from None
    if stamp.tzinfo is None:
        raise InputError(f"Query parameter {key!r} needs a time zone")
    return stamp.timestamp()
