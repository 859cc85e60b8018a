"""The simulated sessions' CDP endpoint: a websocket per ready session, with truth and faults.

Each ready session's cdp_url is ws://<simulator>/cdp/<session_id>?token=<secret> (a
provider often puts a secret in the query string; so do we, so that a client can prove
it never logs it).  It answers what a connect check sends, in CDP's JSON shapes:
Browser.getVersion; Target.createTarget, Target.attachToTarget (flatten only),
Target.closeTarget, Target.getTargets; on an attached session Page.enable and
Page.navigate, followed by Page.domContentEventFired and Page.loadEventFired.  Latencies
(handshake, first command, later commands, navigation) are drawn from the profile's
[cdp] distributions, time-scaled; faults come from the fault table's `cdp` entry.

It serves only while the session lives: the upgrade is refused once it has ended, and
open sockets are closed when it ends (the model tells us: see ModelListener).

The ground truth keeps, per session, every connection's instants (upgrade received,
101 sent, closed), every command's (received, answered) and every event's (sent), in the
simulator's monotonic clock, so a client's timings can be checked against it.  That is
about 200 bytes per command: fine for tests and benchmarks, which is what it is for.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from bench.simulator.faults import (
    DROPPED,
    MALFORMED,
    RATE_LIMITED,
    SERVER_ERROR,
    SLOW,
    FaultInjector,
    format_retry_after,
)
from bench.simulator.model import SessionModel
from bench.simulator.profile import CDP, CdpParams

ROUTE = "/cdp/{session_id}"
PAGE_PATH = "/_sim/page"
# A small page for navigations (`--cdp-navigate`, the real-browser tests): same origin as
# the API, so a navigation never leaves loopback.
PAGE_HTML = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bench page</title></head>"
    b"<body><h1>bench page</h1><p>Served by the async-session simulator.</p></body></html>"
)

# CDP's error codes (those of JSON-RPC, plus Chrome's server error).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
SERVER_ERROR_CODE, SESSION_NOT_FOUND = -32000, -32001
# Methods that only switch a domain on or off: answered {} and otherwise ignored.
_TOGGLES = frozenset({
    "Runtime.enable", "Runtime.disable", "Network.enable", "Network.disable",
    "Log.enable", "Log.disable", "Page.setLifecycleEventsEnabled",
    "Target.setDiscoverTargets", "Target.setAutoAttach",
})
# Close code and reason when the session ends under an open socket.
SESSION_ENDED = (1001, b"session ended")
SERVER_STOPPING = (1001, b"simulator stopping")
# The refusals' reasons, as counted.
REFUSED_REASONS = ("fault", "ended", "unknown", "token", "not_websocket")
CLOSED_BY = ("client", "session_end", "fault", "server_stop")


# What to start once an answer is sent (the page events of a navigation), as a factory so
# that no coroutine exists unless it is scheduled.
_Later = Callable[[], Coroutine[Any, Any, None]] | None
_After = tuple[list[dict[str, Any]], _Later]


class _Closed(Exception):
    """The connection ended while a command was being answered."""


@dataclass
class _Target:
    target_id: str
    url: str
    sessions: set[str] = field(default_factory=set)


@dataclass(eq=False)  # identity: kept in sets
class _Connection:
    """One open websocket: its targets, attached sessions, and its truth record."""

    session_id: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    record: dict[str, Any]
    targets: dict[str, _Target] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # CDP session id -> target id
    page_enabled: set[str] = field(default_factory=set)
    commands: int = 0
    closed_by: str | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass
class _SessionTruth:
    session_id: str
    connects: int = 0
    commands: int = 0
    navigations: int = 0
    load_events: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    connections: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "connects": self.connects,
            "commands": self.commands,
            "navigations": self.navigations,
            "load_events": self.load_events,
            "refused": self.refused,
            "faults": dict(self.faults),
            "connections": self.connections,
        }


class CdpEndpoint:
    """The /cdp/{session_id} websocket handler over one model; also a ModelListener."""

    def __init__(
        self,
        params: CdpParams,
        model: SessionModel,
        injector: FaultInjector,
        *,
        rng: random.Random,
        time_scale: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.params = params
        self._model = model
        self._injector = injector
        self._rng = rng
        self._ts = time_scale
        self._clock = clock
        self._sleep = sleep
        # The token is an HMAC of the session id under a key that never leaves this process:
        # checkable without a lookup, and unguessable for an id that is known.
        self._key = secrets.token_bytes(32)
        self._base = ""  # ws://host:port, once the server is bound
        self._open: dict[str, set[_Connection]] = {}
        self._truth: dict[str, _SessionTruth] = {}
        self._totals: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._closed_by: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    async def _wait(self, seconds: float) -> None:
        """Sleep at least `seconds` on our clock: the loop's timers may wake a little early
        (uvloop's tick is a millisecond), and the truth must never show less than the
        modelled latency."""
        until = self._clock() + seconds
        await self._sleep(seconds)
        while (left := until - self._clock()) > 0:
            await self._sleep(left)

    # ------------------------------------------------------------------ URLs

    def token(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()[:32]

    def bind(self, http_url: str) -> None:
        """The server listens at `http_url`: sessions' cdp_url point there from now on."""
        self._base = "ws" + http_url.removeprefix("http")
        self._model.set_cdp_url_factory(self.url_for)

    def url_for(self, session_id: str) -> str:
        return f"{self._base}/cdp/{session_id}?token={self.token(session_id)}"

    # ------------------------------------------------------------------ model listener

    def launch(self, request_id: str) -> None:
        """Not ours: the modelled backend provisions inside the model."""

    def released(self, request_id: str, session_id: str | None) -> None:
        """The session ended: close its open sockets (from a task: we are inside the model)."""
        if session_id is None:
            return
        for conn in list(self._open.get(session_id, ())):
            self._close_soon(conn, "session_end", SESSION_ENDED)

    @property
    def open_connections(self) -> int:
        return sum(len(conns) for conns in self._open.values())

    def _close_soon(self, conn: _Connection, by: str, close: tuple[int, bytes]) -> None:
        if conn.closed_by is not None:
            return
        conn.closed_by = by
        task = asyncio.get_running_loop().create_task(
            conn.ws.close(code=close[0], message=close[1])
        )
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    async def close_all(self, app: web.Application | None = None) -> None:
        """Close every open socket (the server is stopping); aiohttp's on_shutdown hook."""
        conns = [conn for group in self._open.values() for conn in group]
        for conn in conns:
            self._close_soon(conn, "server_stop", SERVER_STOPPING)
        pending = [task for conn in conns for task in conn.tasks]
        if pending:
            await asyncio.wait(pending, timeout=2.0)

    # ------------------------------------------------------------------ truth

    def _stamp(self, t: float) -> dict[str, float]:
        return {"t": t - self._model.start_mono, "mono": t}

    def _session(self, session_id: str) -> _SessionTruth:
        truth = self._truth.get(session_id)
        if truth is None:
            truth = self._truth[session_id] = _SessionTruth(session_id)
        return truth

    def counters(self) -> dict[str, Any]:
        return {
            "upgrades": self._totals["upgrades"],
            "connects": self._totals["connects"],
            "open": self.open_connections,
            "refused": {reason: self._refused[reason] for reason in REFUSED_REASONS},
            "commands": self._totals["commands"],
            "errors": self._totals["errors"],
            "navigations": self._totals["navigations"],
            "load_events": self._totals["load_events"],
            "faults": dict(self._faults),
            "closed_by": {by: self._closed_by[by] for by in CLOSED_BY},
        }

    def truth(self) -> dict[str, Any]:
        """Per session that was ever connected to (or refused), its CDP record."""
        return {sid: truth.as_dict() for sid, truth in self._truth.items()}

    def session_truth(self, session_id: str) -> dict[str, Any] | None:
        truth = self._truth.get(session_id)
        return None if truth is None else truth.as_dict()

    def _count_fault(self, kind: str, truth: _SessionTruth | None) -> None:
        self._faults[kind] += 1
        self._model.count_fault(kind, CDP)
        if truth is not None:
            truth.faults[kind] += 1

    # ------------------------------------------------------------------ HTTP

    def _refuse(
        self, status: int, message: str, reason: str, truth: _SessionTruth | None, t: float,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self._refused[reason] += 1
        if truth is not None:
            truth.refused.append({**self._stamp(t), "status": status, "reason": reason})
        body = orjson.dumps({"error": {"code": status, "message": message}})
        return web.Response(
            body=body, status=status, content_type="application/json", headers=headers
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /cdp/{session_id}?token=...: the upgrade, then the connection until it closes."""
        t_in = self._clock()
        self._totals["upgrades"] += 1
        session_id = request.match_info["session_id"]
        given = request.rel_url.query.get("token", "")
        # The token first, so that a caller without it learns nothing about the session.
        if not hmac.compare_digest(given.encode(), self.token(session_id).encode()):
            return self._refuse(401, "Invalid or missing token", "token", None, t_in)
        state = self._model.session_state(session_id, t_in)
        if state is None:
            return self._refuse(404, "Session not found", "unknown", None, t_in)
        truth = self._session(session_id)
        if state != "live":
            return self._refuse(404, "Session has ended", "ended", truth, t_in)
        ws = web.WebSocketResponse(timeout=1.0, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return self._refuse(400, "Expected a websocket upgrade", "not_websocket", None, t_in)
        fault = self._injector.decide(CDP)
        if fault.delay_s:
            self._count_fault(SLOW, truth)
            await self._wait(fault.delay_s)
        if fault.kind in (RATE_LIMITED, SERVER_ERROR):
            self._count_fault("refused", truth)
            headers = None
            if fault.status == 429:
                headers = {"Retry-After": format_retry_after(fault.retry_after_s, self._ts)}
            return self._refuse(
                fault.status, fault.message, "fault", truth, self._clock(), headers
            )
        await self._wait(self.params.handshake.sample(self._rng) * self._ts)
        t_accept = self._clock()
        if self._model.session_state(session_id, t_accept) != "live":
            # It ended during the handshake.
            return self._refuse(404, "Session has ended", "ended", truth, t_accept)
        record: dict[str, Any] = {
            "upgrade": self._stamp(t_in),
            "accepted": self._stamp(t_accept),
            "closed": None,
            "closed_by": None,
            "commands": [],
            "events": [],
        }
        truth.connections.append(record)
        truth.connects += 1
        self._totals["connects"] += 1
        conn = _Connection(session_id, ws, request.transport, record)
        self._open.setdefault(session_id, set()).add(conn)
        try:
            await ws.prepare(request)
            await self._serve(conn, truth)
        finally:
            self._open[session_id].discard(conn)
            if not self._open[session_id]:
                del self._open[session_id]
            for task in list(conn.tasks):
                if not task.done() and task.get_name().startswith("cdp-event"):
                    task.cancel()
            by = conn.closed_by or "client"
            record["closed"] = self._stamp(self._clock())
            record["closed_by"] = by
            self._closed_by[by] += 1
        return ws

    # ------------------------------------------------------------------ the connection

    async def _serve(self, conn: _Connection, truth: _SessionTruth) -> None:
        ws = conn.ws
        async for message in ws:
            if conn.closed_by is not None:
                break
            if message.type != WSMsgType.TEXT:
                # CDP is text frames of JSON only.
                await self._send(conn, {"error": {"code": PARSE_ERROR,
                                                  "message": "Message must be a text frame"}})
                continue
            try:
                await self._command(conn, truth, message.data)
            except _Closed:
                break

    async def _send(self, conn: _Connection, payload: dict[str, Any]) -> None:
        await self._send_raw(conn, orjson.dumps(payload).decode())

    async def _command(self, conn: _Connection, truth: _SessionTruth, data: str) -> None:
        t_in = self._clock()
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            await self._send(conn, {"error": {"code": PARSE_ERROR,
                                              "message": "Message must be a valid JSON"}})
            return
        ident = message.get("id") if isinstance(message, dict) else None
        if isinstance(ident, bool) or not isinstance(ident, int):
            text = "Message must have integer 'id' property"
            await self._send(conn, {"error": {"code": INVALID_REQUEST, "message": text}})
            return
        method = message.get("method")
        method = method if isinstance(method, str) else ""
        cdp_session = message.get("sessionId")
        entry: dict[str, Any] = {
            "id": ident,
            "method": method,
            "session": cdp_session,
            "received": self._stamp(t_in),
            "answered": None,
            "error": None,
            "fault": None,
        }
        conn.record["commands"].append(entry)
        truth.commands += 1
        self._totals["commands"] += 1
        conn.commands += 1
        if self._model.session_state(conn.session_id, t_in) != "live":
            # Ended, and the model has not told us yet (an expiry nobody advanced to).
            self._close_soon(conn, "session_end", SESSION_ENDED)
            raise _Closed
        fault = self._injector.decide(CDP)
        dist = self.params.first_command if conn.commands == 1 else self.params.command
        delay = dist.sample(self._rng) * self._ts
        if fault.delay_s:
            self._count_fault(SLOW, truth)
            entry["fault"] = SLOW
            delay += fault.delay_s
        # From the instant the command was read, so the truth's answered - received is
        # never below the modelled latency.
        await self._wait(delay - (self._clock() - t_in))
        if fault.kind == DROPPED:
            # The socket goes without a byte of answer (no close frame either).
            self._count_fault("closed", truth)
            entry["fault"] = "closed"
            conn.closed_by = "fault"
            if conn.transport is not None:
                conn.transport.abort()
            raise _Closed
        answer, after = self._answer(conn, truth, ident, method, message.get("params"), cdp_session)
        if "error" in answer:
            entry["error"] = answer["error"]["code"]
            self._totals["errors"] += 1
        for event in after[0]:
            await self._event(conn, event)
        entry["answered"] = self._stamp(self._clock())
        if fault.kind == MALFORMED:
            self._count_fault(MALFORMED, truth)
            entry["fault"] = MALFORMED
            text = orjson.dumps(answer).decode()
            await self._send_raw(conn, text[: len(text) // 2])
        else:
            await self._send(conn, answer)
        if after[1] is not None:
            task = asyncio.get_running_loop().create_task(after[1](), name="cdp-event")
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)

    async def _send_raw(self, conn: _Connection, text: str) -> None:
        if conn.closed_by is not None or conn.ws.closed:
            raise _Closed
        try:
            await conn.ws.send_str(text)
        except ConnectionError:
            # The client went away under us: its close, not our failure.
            raise _Closed from None

    async def _event(self, conn: _Connection, event: dict[str, Any]) -> None:
        conn.record["events"].append({
            "method": event["method"],
            "session": event.get("sessionId"),
            "sent": self._stamp(self._clock()),
        })
        await self._send(conn, event)

    def _id(self) -> str:
        return f"{self._rng.getrandbits(128):032X}"

    def _answer(
        self,
        conn: _Connection,
        truth: _SessionTruth,
        ident: int,
        method: str,
        params: object,
        cdp_session: object,
    ) -> tuple[dict[str, Any], tuple[list[dict[str, Any]], _Later]]:
        """The answer to one command, events to send before it, and work to start after it."""
        def ok(result: dict[str, Any]) -> dict[str, Any]:
            reply: dict[str, Any] = {"id": ident, "result": result}
            if cdp_session is not None:
                reply["sessionId"] = cdp_session
            return reply

        def error(code: int, text: str) -> dict[str, Any]:
            reply: dict[str, Any] = {"id": ident, "error": {"code": code, "message": text}}
            if cdp_session is not None:
                reply["sessionId"] = cdp_session
            return reply

        nothing: _After = ([], None)
        if not method:
            return error(INVALID_REQUEST, "Message must have string 'method' property"), nothing
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return error(INVALID_PARAMS, "Invalid parameters"), nothing
        if cdp_session is not None:
            if not isinstance(cdp_session, str) or cdp_session not in conn.sessions:
                return error(SESSION_NOT_FOUND, "Session with given id not found."), nothing
            return self._page_command(conn, truth, cdp_session, method, params, ok, error)
        if method in _TOGGLES:
            return ok({}), nothing
        if method == "Browser.getVersion":
            product = self.params.product
            return ok({
                "protocolVersion": "1.3",
                "product": product,
                "revision": "@simulated",
                "userAgent": f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                             f"(KHTML, like Gecko) {product} Safari/537.36",
                "jsVersion": "simulated",
            }), nothing
        if method == "Target.createTarget":
            url = params.get("url")
            if not isinstance(url, str):
                return error(INVALID_PARAMS, "Invalid parameters: url: string value expected"), (
                    [], None)
            target = _Target(self._id(), url)
            conn.targets[target.target_id] = target
            return ok({"targetId": target.target_id}), nothing
        if method == "Target.getTargets":
            infos = [self._target_info(t) for t in conn.targets.values()]
            return ok({"targetInfos": infos}), nothing
        if method == "Target.attachToTarget":
            target = conn.targets.get(params.get("targetId"))  # type: ignore[arg-type]
            if target is None:
                return error(INVALID_PARAMS, "No target with given id found"), nothing
            if params.get("flatten") is not True:
                return error(SERVER_ERROR_CODE,
                             "Only flatten mode is supported by the simulator"), nothing
            session = self._id()
            conn.sessions[session] = target.target_id
            target.sessions.add(session)
            attached = {"method": "Target.attachedToTarget", "params": {
                "sessionId": session, "targetInfo": self._target_info(target, attached=True),
                "waitingForDebugger": False,
            }}
            return ok({"sessionId": session}), ([attached], None)
        if method == "Target.closeTarget":
            target = conn.targets.pop(params.get("targetId"), None)  # type: ignore[arg-type]
            if target is None:
                return error(INVALID_PARAMS, "No target with given id found"), nothing
            events = []
            for session in sorted(target.sessions):
                conn.sessions.pop(session, None)
                conn.page_enabled.discard(session)
                events.append({"method": "Target.detachedFromTarget", "params": {
                    "sessionId": session, "targetId": target.target_id}})
            return ok({"success": True}), (events, None)
        return error(METHOD_NOT_FOUND, f"'{method}' wasn't found"), nothing

    def _page_command(
        self,
        conn: _Connection,
        truth: _SessionTruth,
        session: str,
        method: str,
        params: dict[str, Any],
        ok: Callable[[dict[str, Any]], dict[str, Any]],
        error: Callable[[int, str], dict[str, Any]],
    ) -> tuple[dict[str, Any], tuple[list[dict[str, Any]], _Later]]:
        nothing: _After = ([], None)
        target = conn.targets[conn.sessions[session]]
        if method == "Page.enable":
            conn.page_enabled.add(session)
            return ok({}), nothing
        if method == "Page.disable":
            conn.page_enabled.discard(session)
            return ok({}), nothing
        if method in _TOGGLES:
            return ok({}), nothing
        if method == "Page.navigate":
            url = params.get("url")
            if not isinstance(url, str):
                return error(INVALID_PARAMS, "Invalid parameters: url: string value expected"), (
                    [], None)
            scheme, sep, rest = url.partition(":")
            if not sep or not scheme.isalpha() or not rest:
                return error(SERVER_ERROR_CODE, "Cannot navigate to invalid URL"), nothing
            truth.navigations += 1
            self._totals["navigations"] += 1
            loader = self._id()
            host = rest.removeprefix("//").split("/", 1)[0].split("?", 1)[0].rsplit(":", 1)[0]
            if host.endswith(".invalid") or host == "invalid":
                # What Chrome answers for a name that cannot resolve (RFC 6761: .invalid
                # never does): the navigation failed, no load event follows.
                return ok({"frameId": target.target_id, "loaderId": loader,
                           "errorText": "net::ERR_NAME_NOT_RESOLVED"}), nothing
            target.url = url
            delay = self.params.navigate.sample(self._rng) * self._ts
            return ok({"frameId": target.target_id, "loaderId": loader}), (
                [], functools.partial(self._load, conn, truth, session, delay))
        return error(METHOD_NOT_FOUND, f"'{method}' wasn't found"), nothing

    async def _load(
        self, conn: _Connection, truth: _SessionTruth, session: str, delay: float
    ) -> None:
        """The navigation's page events, `delay` after Page.navigate was answered."""
        await self._wait(delay)
        if session not in conn.sessions or session not in conn.page_enabled:
            return  # closed meanwhile, or nobody asked for Page events
        try:
            for method in ("Page.domContentEventFired", "Page.loadEventFired"):
                await self._event(conn, {"method": method,
                                         "params": {"timestamp": self._clock()},
                                         "sessionId": session})
        except (_Closed, ConnectionError):
            return
        truth.load_events += 1
        self._totals["load_events"] += 1

    @staticmethod
    def _target_info(target: _Target, *, attached: bool = False) -> dict[str, Any]:
        return {"targetId": target.target_id, "type": "page", "title": target.url,
                "url": target.url, "attached": attached or bool(target.sessions),
                "canAccessOpener": False, "browserContextId": "SIMULATED"}


__all__ = ["PAGE_HTML", "PAGE_PATH", "ROUTE", "CdpEndpoint"]
