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


def session_list(views: Iterable[SessionLike]) -> dict[str, Any]:
    """SessionListResponse: items are SessionStatus objects."""
    items = [
        {
            "session_id": v.session_id,
            "status": v.status,
            "tags": list(v.tags),
            "created_at": v.created_at_iso or iso(v.created_at_wall),
        }
        for v in views
    ]
    return {"data": {"count": len(items), "items": items}}


def success() -> dict[str, Any]:
    """SuccessResponse."""
    return {"data": {"status": "success"}}


def billing(fields: Mapping[str, Any]) -> dict[str, Any]:
    """BillingInfoResponse around the model's fields."""
    return {"data": dict(fields)}
