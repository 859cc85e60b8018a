"""A blocking CDP connect check of a session's cdp_url that cooperates with gevent.

After `ready`, a journey may ask: is the session really usable?  connect_check() opens
the cdp_url's websocket, sends Browser.getVersion, and optionally opens a page and
navigates it (Target.createTarget, Target.attachToTarget with flatten, Page.enable,
Page.navigate until Page.loadEventFired), then closes the page and the socket.  It
returns instants from the caller's clock and, on failure, one error kind with a short
cause.  It never raises for what the far end does, and never logs.

It runs on websocket-client, which is pure Python on the `socket` and `ssl` modules:
under Locust, gevent has patched those, so a check waiting on the network yields to the
other users instead of blocking the process (tests/test_cdp_client.py proves two checks
overlap).  No Locust import and no harness state here: the journey owns both.

Secrets: providers put credentials in the cdp_url's query string (Anchor's apiKey, our
simulator's token), so no text this module produces carries the query string, the
userinfo or the fragment: redact_url() is applied to every URL it names, and every
cause is scrubbed of the URL's secret parts before it is returned.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import websocket

# Error kinds, one per failed check.
BAD_URL = "bad_url"  # not a ws:// or wss:// URL with a host
REFUSED = "refused"  # TCP connection refused, or the upgrade answered with an HTTP status
TLS = "tls"  # TLS handshake or certificate verification failed
NETWORK = "network"  # name resolution or another socket error before the upgrade
TIMEOUT = "timeout"  # the check's deadline passed
CLOSED = "closed"  # the socket closed (or reset) before an expected answer
PROTOCOL = "protocol"  # an answer that is not CDP: bad JSON, missing fields, bad frames
CDP_ERROR = "cdp_error"  # the browser answered a command with a CDP error
NAVIGATE_FAILED = "navigate_failed"  # Page.navigate answered with an errorText
ERROR_KINDS = (
    BAD_URL, REFUSED, TLS, NETWORK, TIMEOUT, CLOSED, PROTOCOL, CDP_ERROR, NAVIGATE_FAILED
)
# Longest cause text; longer ones are cut (a peer-controlled close reason, say).
_CAUSE_MAX = 160
# Closing is best effort and bounded: a peer that never answers a close costs this much.
_CLOSE_WAIT_S = 1.0
REDACTED = "<redacted>"


def redact_url(url: str) -> str:
    """`url` without what may be secret: userinfo, query string and fragment.

    `ws://user:pw@host:9222/devtools/browser/x?token=abc#f` -> `ws://host:9222/devtools/
    browser/x?<redacted>`.  Scheme, host, port and path stay (they say where, not who).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = f"?{REDACTED}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _secrets_of(url: str) -> list[str]:
    """The pieces of `url` that must never appear in a message, longest first."""
    found = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    for piece in (parts.query, parts.fragment, parts.password or "", parts.username or ""):
        if piece:
            found.add(piece)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        # Short values ("1", "true") are not secrets, and scrubbing them would mangle text.
        if len(value) >= 4:
            found.add(value)
        if len(key) >= 4 and not value:
            found.add(key)
    return sorted(found, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for secret in _secrets_of(url):
        text = text.replace(secret, REDACTED)
    return text[:_CAUSE_MAX]


@dataclass(frozen=True, slots=True)
class CdpResult:
    """What one connect check saw; instants are the caller's clock, in seconds.

    started        just before the TCP connect (name resolution included)
    connect        the websocket is open (101 read and checked)
    first_command  Browser.getVersion's answer read (sent at marks["first_command_sent"])
    navigate       Page.loadEventFired read (the navigation began at
                   marks["navigate_started"], when Target.createTarget was sent)
    marks          every instant by name: first_command_sent, navigate_started,
                   target_created, attached, navigate_sent, navigate_answered, closed
    """

    ok: bool
    started: float
    connect: float | None = None
    first_command: float | None = None
    navigate: float | None = None
    error: str | None = None  # one of ERROR_KINDS when not ok
    cause: str = ""  # short, for people; never the URL's query string
    stage: str = ""  # where it failed: "connect" or the CDP method
    http_status: int | None = None  # the upgrade's answer when it was refused with one
    browser: str | None = None  # Browser.getVersion's product
    marks: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def connect_s(self) -> float | None:
        """Start to websocket open: TCP, TLS and the upgrade."""
        return None if self.connect is None else self.connect - self.started

    @property
    def first_command_s(self) -> float | None:
        """Browser.getVersion's round trip."""
        sent = self.marks.get("first_command_sent")
        return None if self.first_command is None or sent is None else self.first_command - sent

    @property
    def navigate_s(self) -> float | None:
        """Target.createTarget sent to Page.loadEventFired read."""
        began = self.marks.get("navigate_started")
        return None if self.navigate is None or began is None else self.navigate - began


class _Failure(Exception):
    def __init__(self, kind: str, cause: str, http_status: int | None = None) -> None:
        super().__init__(cause)
        self.kind = kind
        self.cause = cause
        self.http_status = http_status


def _classify(exc: BaseException) -> _Failure:
    """One error kind and a cause built from safe pieces (never an exception's own text)."""
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = exc.status_code
        reason = getattr(exc, "status_message", "") or ""
        return _Failure(REFUSED, f"upgrade answered HTTP {status} {reason}".strip(), status)
    if isinstance(exc, websocket.WebSocketTimeoutException | TimeoutError | socket.timeout):
        return _Failure(TIMEOUT, "no answer before the deadline")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure(TLS, f"certificate verification failed: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return _Failure(TLS, f"TLS error: {exc.reason or type(exc).__name__}")
    if isinstance(exc, ConnectionRefusedError):
        return _Failure(REFUSED, "connection refused")
    if isinstance(
        exc,
        websocket.WebSocketConnectionClosedException
        | ConnectionResetError
        | ConnectionAbortedError
        | BrokenPipeError,
    ):
        return _Failure(CLOSED, "connection closed before an answer")
    if isinstance(exc, websocket.WebSocketAddressException | socket.gaierror):
        return _Failure(NETWORK, "cannot resolve the host")
    if isinstance(exc, websocket.WebSocketProxyException):
        return _Failure(NETWORK, "proxy error")
    if isinstance(exc, websocket.WebSocketProtocolException | websocket.WebSocketPayloadException):
        return _Failure(PROTOCOL, f"bad websocket frames ({type(exc).__name__})")
    if isinstance(exc, websocket.WebSocketException):
        return _Failure(PROTOCOL, f"websocket error ({type(exc).__name__})")
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "")
        return _Failure(NETWORK, f"socket error {name or type(exc).__name__}".strip())
    if isinstance(exc, UnicodeDecodeError | ValueError):
        return _Failure(PROTOCOL, f"unreadable message ({type(exc).__name__})")
    return _Failure(PROTOCOL, f"unexpected {type(exc).__name__}")


class _Connection:
    """Commands by id over one websocket; events kept in arrival order."""

    def __init__(self, ws: websocket.WebSocket, clock: Callable[[], float], deadline: float):
        self.ws = ws
        self.clock = clock
        self.deadline = deadline
        self.next_id = 0
        self.events: list[tuple[float, dict[str, Any]]] = []

    def _remaining(self) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise _Failure(TIMEOUT, "no answer before the deadline")
        return left

    def _read(self) -> dict[str, Any]:
        self.ws.settimeout(self._remaining())
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            reason = data[2:].decode("utf-8", "replace")[:40]
            detail = f" (code {code}{': ' + reason if reason else ''})" if code else ""
            raise _Failure(CLOSED, f"closed by the far end{detail}")
        if opcode != websocket.ABNF.OPCODE_TEXT:
            raise _Failure(PROTOCOL, "a non-text frame")
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _Failure(PROTOCOL, "an answer that is not JSON") from None
        if not isinstance(message, dict):
            raise _Failure(PROTOCOL, "an answer that is not a JSON object")
        return message

    def send(self, method: str, params: Mapping[str, Any] | None = None,
             session_id: str | None = None) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self.ws.send(orjson.dumps(message).decode())
        return self.next_id

    def answer(self, ident: int, method: str) -> dict[str, Any]:
        """The result of command `ident`, reading (and keeping) events until it comes."""
        while True:
            message = self._read()
            if "id" not in message:
                if isinstance(message.get("method"), str):
                    self.events.append((self.clock(), message))
                    continue
                raise _Failure(PROTOCOL, "a message with neither id nor method")
            if message["id"] != ident:
                continue  # an answer to a command we gave up on
            error = message.get("error")
            if error is not None:
                code = error.get("code") if isinstance(error, dict) else None
                text = str(error.get("message", ""))[:60] if isinstance(error, dict) else ""
                raise _Failure(CDP_ERROR, f"{method} answered error {code}: {text}")
            result = message.get("result")
            if not isinstance(result, dict):
                raise _Failure(PROTOCOL, f"{method} answered without a result object")
            return result

    def event(self, method: str, session_id: str, after: int) -> float:
        """When the first `method` event of `session_id` arrived past event index `after`."""
        index = after
        while True:
            while index < len(self.events):
                at, message = self.events[index]
                index += 1
                if message["method"] == method and message.get("sessionId") == session_id:
                    return at
            message = self._read()
            if "id" in message:
                continue  # a late answer to something else
            if isinstance(message.get("method"), str):
                self.events.append((self.clock(), message))


def _context(insecure: bool, ca_bundle: str | None) -> ssl.SSLContext:
    # Verify by default, against the system's store or the given bundle.
    context = ssl.create_default_context(cafile=ca_bundle)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect_check(
    cdp_url: str,
    *,
    navigate_url: str | None = None,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.perf_counter,
    insecure: bool = False,
    ca_bundle: str | None = None,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> CdpResult:
    """Open `cdp_url`, time the first command and (with navigate_url) a navigation.

    `timeout` bounds the whole check (seconds, on `clock`, which must be a real
    monotonic clock).  TLS (wss://) verifies the certificate and host name unless
    `insecure`; `ca_bundle` is a PEM file of extra trusted roots.  `headers` are sent
    with the upgrade (never shown anywhere).  The page is closed and the socket closed
    before returning, whatever happened.
    """
    started = clock()
    marks: dict[str, float] = {}
    stage = "connect"
    state: dict[str, Any] = {}

    def result(failure: _Failure | None = None) -> CdpResult:
        return CdpResult(
            ok=failure is None,
            started=started,
            connect=state.get("connect"),
            first_command=state.get("first_command"),
            navigate=state.get("navigate"),
            error=None if failure is None else failure.kind,
            cause="" if failure is None else _scrub(f"{failure.cause} ({stage})", cdp_url),
            stage="" if failure is None else stage,
            http_status=None if failure is None else failure.http_status,
            browser=state.get("browser"),
            marks=MappingProxyType(dict(marks)),
        )

    try:
        parts = urlsplit(cdp_url)
        valid = parts.scheme in ("ws", "wss") and bool(parts.hostname)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        return result(_Failure(BAD_URL, f"not a ws:// or wss:// URL: {redact_url(cdp_url)}"))

    deadline = started + timeout
    # The harness passes its own context (bench.measure.tls: the run's --insecure /
    # --ca-bundle), so the check trusts exactly what the API calls trust.
    context = ssl_context or _context(insecure, ca_bundle)
    sslopt = {"context": context} if parts.scheme == "wss" else None
    ws = websocket.WebSocket(sslopt=sslopt, enable_multithread=False)
    conn = _Connection(ws, clock, deadline)
    failure: _Failure | None = None
    target_id: str | None = None
    try:
        # No Origin header: DevTools refuses foreign origins, and CDP clients (Playwright,
        # Puppeteer) send none.
        ws.connect(
            cdp_url,
            timeout=max(0.001, deadline - clock()),
            suppress_origin=True,
            header=[f"{k}: {v}" for k, v in (headers or {}).items()],
        )
        state["connect"] = clock()
        stage = "Browser.getVersion"
        marks["first_command_sent"] = clock()
        version = conn.answer(conn.send(stage), stage)
        state["first_command"] = clock()
        product = version.get("product")
        if not isinstance(product, str):
            raise _Failure(PROTOCOL, "Browser.getVersion answered without a product")
        state["browser"] = product[:80]
        if navigate_url is not None:
            stage = "Target.createTarget"
            marks["navigate_started"] = clock()
            created = conn.answer(conn.send(stage, {"url": "about:blank"}), stage)
            target_id = created.get("targetId")
            if not isinstance(target_id, str):
                raise _Failure(PROTOCOL, "Target.createTarget answered without a targetId")
            marks["target_created"] = clock()
            stage = "Target.attachToTarget"
            attached = conn.answer(
                conn.send(stage, {"targetId": target_id, "flatten": True}), stage
            )
            session_id = attached.get("sessionId")
            if not isinstance(session_id, str):
                raise _Failure(PROTOCOL, "Target.attachToTarget answered without a sessionId")
            marks["attached"] = clock()
            stage = "Page.enable"
            conn.answer(conn.send(stage, session_id=session_id), stage)
            stage = "Page.navigate"
            marks["navigate_sent"] = clock()
            navigated = conn.answer(
                conn.send(stage, {"url": navigate_url}, session_id=session_id), stage
            )
            marks["navigate_answered"] = clock()
            error_text = navigated.get("errorText")
            if error_text:
                raise _Failure(NAVIGATE_FAILED, f"navigation failed: {str(error_text)[:60]}")
            # Only a load event after the answer counts: the about:blank the target opened
            # with may report its own load while we attach.
            stage = "Page.loadEventFired"
            state["navigate"] = conn.event(stage, session_id, after=len(conn.events))
    except Exception as exc:  # every failure of the far end becomes a result
        failure = _classify(exc)
    finally:
        _close(conn, target_id, alive=failure is None or failure.kind in (
            CDP_ERROR, NAVIGATE_FAILED, PROTOCOL))
        marks["closed"] = clock()
    return result(failure)


def _close(conn: _Connection, target_id: str | None, *, alive: bool) -> None:
    """Close the page (when the socket still works) and the socket; never raises."""
    ws = conn.ws
    if alive and ws.connected:
        # A short budget of its own: the check's deadline may be spent already.
        conn.deadline = conn.clock() + _CLOSE_WAIT_S
        if target_id is not None:
            with contextlib.suppress(Exception):
                conn.answer(conn.send("Target.closeTarget", {"targetId": target_id}),
                            "Target.closeTarget")
        with contextlib.suppress(Exception):
            ws.close(timeout=_CLOSE_WAIT_S)
    with contextlib.suppress(Exception):
        ws.shutdown()


__all__ = [
    "BAD_URL",
    "CDP_ERROR",
    "CLOSED",
    "ERROR_KINDS",
    "NAVIGATE_FAILED",
    "NETWORK",
    "PROTOCOL",
    "REFUSED",
    "TIMEOUT",
    "TLS",
    "CdpResult",
    "connect_check",
    "redact_url",
]
