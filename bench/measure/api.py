"""The async-session API as the harness reads it: paths, replies, and bodies parsed leniently.

The spec and the API doc are the contract; providers differ where they leave room
(status words, missing optional objects, paging).  Parsing here accepts every
reading we know of and raises ProtocolViolation only for what no reading allows.
Pure: bytes in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from bench.core.journey import KNOWN_STATUSES

CREATE_PATH = "/v1/sessions/async"
STATUS_NAME = "/v1/sessions/async/[request_id]/status"
RELEASE_NAME = "/v1/sessions/[session_id]"
LIST_PATH = "/v1/sessions/all/status"


# A *session's* status is free text in the spec (the doc shows `running`, outside
# any enum).  Words that say it is over; any other word is checked, never assumed.
ENDED_SESSION_WORDS = frozenset(
    {
        "ended", "completed", "complete", "terminated", "stopped", "closed", "finished",
        "expired", "failed", "cancelled", "canceled", "killed", "dead", "deleted",
        "released", "timed_out", "timeout",
    }
)  # fmt: skip
LIVE_SESSION_WORDS = frozenset(
    {"running", "active", "idle", "ready", "pending", "processing", "starting", "created"}
)

# DELETE answers that mean the session is over: ended now (2xx), or already ended or
# unknown (401 is the spec's answer for both; 404 / 410 are others' readings).
ENDED_BY_DELETE = frozenset({401, 404, 410})

# Create refusals that no retry or later journey can fix: stop the run at once.
FATAL_CREATE = {
    401: "the provider refused the API key (401)",
    402: "the provider refused to create sessions: insufficient credits (402)",
    403: "the provider refused to create sessions: key not allowed or cost limit (403)",
}
# Creates whose answer was lost: the provider may have made a session (a gateway's
# 502 / 504 answers for an upstream that may have acted, like a network error).
UNKNOWN_CREATE = frozenset({0, 502, 504})


@dataclass(frozen=True, slots=True)
class Reply:
    """What a transport returns: status 0 means no HTTP answer (network error)."""

    status: int
    body: bytes = b""
    retry_after: str | None = None


class Transport(Protocol):
    def create(self, body: bytes) -> Reply: ...
    def status(self, request_id: str) -> Reply: ...
    def release(self, session_id: str) -> Reply: ...


class ProtocolViolation(Exception):
    """The target answered 2xx with a body the API does not allow."""


def ended_by_delete(status: int) -> bool:
    return 200 <= status < 300 or status in ENDED_BY_DELETE


def data_of(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolViolation("body is not JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ProtocolViolation("body has no 'data' object")
    return data


@dataclass(frozen=True, slots=True)
class Status:
    """One status answer: the request's status (it decides), the phase (detail), the session."""

    status: str
    phase: str | None  # None when the answer carries no progress
    session_id: str | None  # None until the session row exists (the spec: absent until then)
    cdp_url: str | None = None  # where the session is connected to (a secret may ride in it)


def parse_status(body: bytes) -> Status:
    """A status answer; raises ProtocolViolation only for what no reading of the spec allows."""
    data = data_of(body)
    status = data.get("status")
    if not isinstance(status, str) or status not in KNOWN_STATUSES:
        raise ProtocolViolation(f"unknown status {status!r}")
    progress = data.get("progress")
    phase = progress.get("current_phase") if isinstance(progress, dict) else None
    if phase is not None and not isinstance(phase, str):
        raise ProtocolViolation("progress.current_phase is not a string")
    session = data.get("session")
    if session is None:
        return Status(status, phase, None)
    if not isinstance(session, dict):
        raise ProtocolViolation("session is not an object")
    session_id = session.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ProtocolViolation("session without a session_id")
    cdp_url = session.get("cdp_url")
    return Status(status, phase, session_id, cdp_url if isinstance(cdp_url, str) else None)


def error_message(body: bytes, limit: int = 120) -> str:
    """The provider's error text from an ErrorResponse body (one line, short), or ''."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        return ""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass(frozen=True)
class ListedSession:
    session_id: str
    status: str | None
    tags: tuple[str, ...] | None  # None when the item says nothing of its tags


@dataclass(frozen=True)
class ListPage:
    items: tuple[ListedSession, ...]
    count: int | None  # the total the provider says it has, when it says
    next_cursor: str | None


def parse_list(body: bytes) -> ListPage:
    """One answer of the list endpoint; raises ProtocolViolation when it is not a list."""
    data = data_of(body)
    items = data.get("items")
    if not isinstance(items, list):
        raise ProtocolViolation("list answer has no 'items' array")
    sessions = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ProtocolViolation("list item is not an object")
        session_id = item.get("session_id", item.get("id"))
        if not isinstance(session_id, str) or not session_id:
            raise ProtocolViolation("list item has no session_id")
        status = item.get("status")
        tags = item.get("tags")
        sessions.append(
            ListedSession(
                session_id,
                status if isinstance(status, str) else None,
                tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else None,
            )
        )
    count = data.get("count")
    cursor = next(
        (data[k] for k in ("next_cursor", "cursor", "next") if isinstance(data.get(k), str)),
        None,
    )
    return ListPage(
        tuple(sessions),
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        cursor or None,
    )


def session_state(word: str | None) -> bool | None:
    """True when a session's status word says it ended, False when live, None when unknown."""
    if word is None:
        return None
    normal = word.strip().lower()
    if normal in ENDED_SESSION_WORDS:
        return True
    if normal in LIVE_SESSION_WORDS:
        return False
    return None


__all__ = [
    "CREATE_PATH",
    "ENDED_SESSION_WORDS",
    "FATAL_CREATE",
    "KNOWN_STATUSES",
    "LIST_PATH",
    "RELEASE_NAME",
    "STATUS_NAME",
    "UNKNOWN_CREATE",
    "ListPage",
    "ListedSession",
    "ProtocolViolation",
    "Reply",
    "Status",
    "Transport",
    "data_of",
    "ended_by_delete",
    "error_message",
    "parse_list",
    "parse_status",
    "session_state",
]
