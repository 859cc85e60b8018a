"""End what a run left behind: cut-short journeys' sessions, then all carrying the run tag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from bench.measure.driver import ProtocolViolation, parse_status
from bench.measure.transport import HttpxTransport


@dataclass
class Orphans:
    """Requests and sessions a process created but has not seen ended."""

    # request_id -> session_id (None until the request is seen ready)
    open: dict[str, str | None] = field(default_factory=dict)

    def request(self, request_id: str) -> None:
        self.open.setdefault(request_id, None)

    def session(self, request_id: str, session_id: str) -> None:
        self.open[request_id] = session_id

    def closed(self, request_id: str) -> None:
        self.open.pop(request_id, None)

    def __len__(self) -> int:
        return len(self.open)


def resolve(
    orphans: Orphans,
    transport: HttpxTransport,
    *,
    deadline: float,
    poll_interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    """Poll each open request until it has a session or cannot get one, and end the sessions.

    Returns how many sessions it ended.  Bounded by `deadline` (monotonic seconds);
    what is still open then stays in `orphans` for the tag sweep to catch.
    """
    ended = 0
    while orphans.open and clock() < deadline:
        for request_id, session_id in list(orphans.open.items()):
            if clock() >= deadline:
                break  # checked per request: a hung target costs one call past it, not N
            if session_id is None:
                reply = transport.status(request_id)
                if reply.status == 404:
                    orphans.closed(request_id)  # the target forgot it: nothing to end
                    continue
                if reply.status != 200:
                    continue
                try:
                    status, _, session_id = parse_status(reply.body)
                except ProtocolViolation:
                    continue
                if status in ("failed", "cancelled", "completed"):
                    orphans.closed(request_id)
                    continue
                if session_id is None:
                    continue
            reply = transport.release(session_id)
            # 401 is what the real API answers for a session it no longer knows.
            if 200 <= reply.status < 300 or reply.status == 401:
                ended += int(reply.status != 401)
                orphans.closed(request_id)
        if orphans.open:
            sleep(min(poll_interval, max(0.0, deadline - clock())))
    return ended


def tagged_sessions(transport: HttpxTransport, tag: str) -> list[str] | None:
    """Ids of live sessions carrying `tag`, or None when the target would not say."""
    reply = transport.list_tagged(tag)
    if reply.status != 200:
        return None
    try:
        doc = orjson.loads(reply.body)
        items = doc["data"]["items"]
        return [str(item["session_id"]) for item in items if item.get("status") != "ended"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def sweep(transport: HttpxTransport, tag: str) -> tuple[int, list[str] | None]:
    """End every live session carrying `tag`; return (ended, ids still alive afterwards)."""
    ids = tagged_sessions(transport, tag) or []
    ended = 0
    for session_id in ids:
        if 200 <= transport.release(session_id).status < 300:
            ended += 1
    return ended, tagged_sessions(transport, tag)
