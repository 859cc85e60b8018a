"""End what a run left behind: cut-short journeys' sessions, then all carrying the run tag."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.measure.driver import ProtocolViolation, parse_status
from bench.measure.transport import HttpxTransport

log = logging.getLogger("bench")


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


def unswept_report(unresolved: dict[str, str | None]) -> dict[str, Any]:
    """The clean-up report before (or without) a sweep: what is known not to be ended.

    `unresolved` maps every request the run could not see ended to its session id
    (None while the request never showed one).
    """
    unended = sorted({sid for sid in unresolved.values() if sid})
    pending = sorted(rid for rid, sid in unresolved.items() if not sid)
    return {
        "ended_by_sweep": 0,
        "left_alive": 0,
        "left_alive_ids": [],
        "unended_session_ids": unended,
        "unresolved_request_ids": pending,
        "sweep_ok": False,
        "leaked": len(unended) + len(pending),
    }


def final_report(
    unresolved: dict[str, str | None], host: str | None, api_key: str, tag: str
) -> dict[str, Any]:
    """End what is left by tag, and list every session not confirmed ended.

    A session counts as leaked when the sweep still finds it alive, or when the
    harness created it and never saw an end confirmed (it may have died of its
    idle timeout meanwhile: billed all the same), or when a request was still
    unresolved at the end (it may yet become a session).
    """
    report = unswept_report(unresolved)
    unended, pending = report["unended_session_ids"], report["unresolved_request_ids"]
    alive: list[str] | None = None
    if host:
        transport = HttpxTransport(host, api_key)
        try:
            ended, alive = sweep(transport, tag)
        finally:
            transport.close()
        report["ended_by_sweep"] = ended
    if alive is not None:
        report.update(sweep_ok=True, left_alive=len(alive), left_alive_ids=alive)
    else:
        log.warning("could not list the run's sessions by tag: leaks cannot be ruled out")
    report["leaked"] = len(set(alive or ()) | set(unended)) + len(pending)
    return report
