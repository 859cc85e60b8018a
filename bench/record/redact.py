"""Mask credentials in a session config before it is written anywhere (results, reports, logs)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Key names are compared lower-cased with separators dropped, so "api-key",
# "API_KEY" and "apiKey" all read "apikey".
_SECRET_NAMES = frozenset(
    {
        "auth",
        "authorization",
        "bearer",
        "otp",
        "pass",
        "passwd",
        "pwd",
        "totp",
    }
)
# A name ending in one of these is a credential: proxy_password, client_secret,
# access_token, x-api-key, anchor-api-key, session_cookies, private_key ...
_SECRET_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "secretvalues",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "credentials",
    "cookie",
    "cookies",
)
# A URL's user-info ("http://user:pass@proxy:8080") is a credential wherever it appears.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret_key(name: str) -> bool:
    """Whether a key's value is a credential by its name alone."""
    key = _normal(name)
    return key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES)


def _mask(value: Any) -> Any:
    # null and true/false say whether something is set, not what it is: keep them.
    if value is None or isinstance(value, bool):
        return value
    return MASK


def redact_config(obj: Any) -> Any:
    """A deep copy of `obj` with credential values replaced by "***".

    Masked: values under secret-looking keys (see `is_secret_key`); a bare ``key``
    holding a string (an API key) unless it names the field of a name/value pair;
    the ``value`` of a name/value pair whose name is secret-looking (``{"name":
    "Authorization", "value": ...}``); ``username`` and ``password`` of any
    ``proxy`` object (custom proxies carry account credentials, and providers often
    encode session tokens in the user name); user-info in URLs.  Mappings come back
    as dicts.  Idempotent.
    """
    return _redact(obj, parent=None)


def _redact(obj: Any, parent: str | None) -> Any:
    if isinstance(obj, Mapping):
        return _redact_mapping(obj, parent)
    if isinstance(obj, list):
        return [_redact(item, parent) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_redact(item, parent) for item in obj)
    if isinstance(obj, str):
        return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", obj)
    return copy.deepcopy(obj)


def _redact_mapping(obj: Mapping[Any, Any], parent: str | None) -> dict[Any, Any]:
    names = {_normal(str(k)): k for k in obj}
    is_pair = "value" in names and ("name" in names or "key" in names)
    pair_label = obj.get(names.get("name", names.get("key")))
    secret_pair = is_pair and isinstance(pair_label, str) and _label_is_secret(pair_label)
    is_proxy = (parent is not None and _normal(parent) in ("proxy", "proxies")) or (
        obj.get("type") == "custom" and "server" in obj
    )
    out: dict[Any, Any] = {}
    for key, value in obj.items():
        name = _normal(str(key))
        if (
            is_secret_key(str(key))
            or (name == "key" and isinstance(value, str) and not is_pair)
            or (name == "value" and secret_pair)
            or (is_proxy and name in ("username", "user", "password"))
        ):
            out[key] = _mask(value)
        else:
            out[key] = _redact(value, str(key))
    return out


def _label_is_secret(label: str) -> bool:
    return is_secret_key(label) or _normal(label) in ("key", "cookie", "proxyauthorization")


__all__ = ["MASK", "is_secret_key", "redact_config"]
