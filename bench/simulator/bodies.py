"""Pure translation of model views into the spec's JSON response bodies and error bodies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson


class SessionLike(Protocol):
    session_id: str
    status: str
    tags: tuple[str, ...]
    created_at_wall: float
    cdp_url: str
    live_view_url: str
    created_at_iso: str


class RequestLike(Protocol):
    request_id: str
    status: str
    phase: str
    created_at_wall: float
    session: SessionLike | None
    created_at_iso: str


def iso(wall: float) -> str:
    """RFC 3339 UTC timestamp with milliseconds and a `Z`, as the provider writes them."""
    stamp = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def error(code: int, message: str) -> dict[str, Any]:
    """ErrorResponse: the spec types `code` as an integer, the HTTP status."""
    return {"error": {"code": code, "message": message}}


def error_bytes(code: int, message: str) -> bytes:
    return orjson.dumps(error(code, message))


def created(request_id: str) -> dict[str, Any]:
    """AsyncSessionCreateResponseSchema."""
    return {"data": {"request_id": request_id, "status": "pending", "session_id": None}}


def async_status(view: RequestLike) -> dict[str, Any]:
    """AsyncSessionStatusResponseSchema; `session` only once the model has one."""
    data: dict[str, Any] = {
        "request_id": view.request_id,
        "status": view.status,
        "created_at": view.created_at_iso or iso(view.created_at_wall),
        "progress": {"current_phase": view.phase},
    }
    if view.session is not None:
        s = view.session
        data["session"] = {
            "session_id": s.session_id,
            "status": s.status,
            "cdp_url": s.cdp_url,
            "live_view_url": s.live_view_url,
        }
    return {"data": data}


def session(view: SessionLike) -> dict[str, Any]:
    """GET /v1/sessions/{id}; tags sit in `configuration` (see deviations.py)."""
    return {
        "data": {
            "session_id": view.session_id,
            "status": view.status,
            "created_at": view.created_at_iso or iso(view.created_at_wall),
            "playground": False,
            "configuration": {"session": {"tags": list(view.tags)}},
        }
    }


NO_CURSOR = object()  # session_list: leave `next_cursor` out


def session_list(
    views: Iterable[SessionLike], *, total: int | None = None, next_cursor: object = NO_CURSOR
) -> dict[str, Any]:
    """SessionListResponse: items are SessionStatus objects.

    `total` is `count` when the items are one page of a longer list (default: the
    items); `next_cursor` (a string, or None for the last page) is added only when given.
    """
    items = [
        {
            "session_id": v.session_id,
            "status": v.status,
            "tags": list(v.tags),
            "created_at": v.created_at_iso or iso(v.created_at_wall),
        }
        for v in views
    ]
    data: dict[str, Any] = {"count": len(items) if total is None else total, "items": items}
    if next_cursor is not NO_CURSOR:
        data["next_cursor"] = next_cursor
    return {"data": data}


def success() -> dict[str, Any]:
    """SuccessResponse."""
    return {"data": {"status": "success"}}


def billing(fields: Mapping[str, Any]) -> dict[str, Any]:
    """BillingInfoResponse around the model's fields."""
    return {"data": dict(fields)}


# The one unknown field name the extra-fields dialect adds; the spec's schemas allow
# additional properties, so clients must ignore it (and the SDK's models do).
EXTRA_FIELD = "x_sim_extra"


def with_extra_fields(body: Any) -> Any:
    """`body` with an unknown extra field in every object a client reads (in place).

    The top level, `data` / `error`, the embedded `session`, `progress` and each list item:
    every object the spec describes, so a client that rejects unknown fields anywhere fails.
    """
    if not isinstance(body, dict):
        return body
    body[EXTRA_FIELD] = {"about": "unknown field; ignore it"}
    for key in ("data", "error"):
        inner = body.get(key)
        if isinstance(inner, dict):
            inner[EXTRA_FIELD] = key
            for child in ("session", "progress"):
                if isinstance(inner.get(child), dict):
                    inner[child][EXTRA_FIELD] = child
            for item in inner.get("items") or ():
                if isinstance(item, dict):
                    item[EXTRA_FIELD] = "item"
    return body
