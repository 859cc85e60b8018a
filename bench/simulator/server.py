"""The simulator's HTTP layer: an aiohttp app serving the async-session API from a SessionModel."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from bench.simulator import bodies
from bench.simulator.cdp import PAGE_HTML, PAGE_PATH, ROUTE, CdpEndpoint
from bench.simulator.dialect import SAME_ORIGIN, Dialect
from bench.simulator.faults import (
    DROPPED,
    MALFORMED,
    NO_FAULT,
    SLOW,
    Fault,
    FaultConfigError,
    FaultInjector,
    format_retry_after,
    parse_fault_table,
)
from bench.simulator.model import AsyncRequestView, ModelListener, Rejected, SessionModel
from bench.simulator.origin import OtherOrigin
from bench.simulator.profile import Profile
from bench.simulator.validate import MAX_BODY_BYTES, InputError, parse_create_body, parse_list_query

API_KEY_HEADER = "anchor-api-key"
DEFAULT_API_KEY = "sim-local-key"
LISTENING_PREFIX = "bench-simulator listening on "

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BrowserPoolLike(ModelListener, Protocol):
    """What the app needs of bench.simulator.browsers.BrowserPool (imported only when used)."""

    @property
    def alive(self) -> int: ...

    async def close(self) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    def truth(self) -> dict[str, dict[str, Any]]: ...

_JSON = "application/json"
_log = logging.getLogger("bench.simulator")


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    # OPT_NON_STR_KEYS: truth and counters may carry non-string keys.
    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=bodies.error_bytes(status, message), status=status, content_type=_JSON, headers=headers
    )


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class SimulatorApp:
    """Request handlers around one model; every call passes the monotonic clock's `now`."""

    def __init__(
        self,
        model: SessionModel,
        injector: FaultInjector,
        dialect: Dialect,
        *,
        api_keys: Sequence[str],
        truth: bool,
        time_scale: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cdp: CdpEndpoint | None = None,
        browsers: BrowserPoolLike | None = None,
    ) -> None:
        self.model = model
        self.injector = injector
        self.dialect = dialect
        # The sessions' CDP websocket (modelled backend) or their real browsers (chromium).
        self.cdp = cdp
        self.browsers = browsers
        self._ticker: asyncio.Task[None] | None = None
        # Where cross-origin redirects point; listening only when a redirect may go there.
        self.other_origin = OtherOrigin(API_KEY_HEADER)
        self._keys = [k.encode("utf-8") for k in api_keys]
        self._truth = truth
        self._time_scale = time_scale
        self._clock = clock
        self._sleep = sleep
        # Our own failures (uncaught exceptions turned into 500): tests assert it stays 0.
        self.server_errors: Counter[str] = Counter()
        self._pages_served = 0
        # Serialised status bodies, reused while the model hands back the same cached view.
        self._status_cache: dict[str, tuple[object, bytes]] = {}

    @property
    def needs_other_origin(self) -> bool:
        p = self.dialect.params
        return p.redirect_rate > 0 and "other_origin" in p.redirect_targets

    def _err(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """An API error answer: ErrorResponse, with the dialect's extra fields."""
        if not self.dialect.params.extra_fields:
            return _error(status, message, headers)
        return _json(status, self.dialect.decorate(bodies.error(status, message)), headers)

    def _ok(self, payload: Any, status: int = 200) -> web.Response:
        return _json(status, self.dialect.decorate(payload))

    # ------------------------------------------------------------------ app wiring

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors])
        r = app.router
        # /v1/sessions/all* before /v1/sessions/{session_id}: the router tries routes in order.
        r.add_post("/v1/sessions/async", self._endpoint("create", self._create))
        r.add_get(
            "/v1/sessions/async/{request_id}/status", self._endpoint("status", self._status)
        )
        r.add_get("/v1/sessions/all/status", self._endpoint("list", self._list))
        r.add_delete("/v1/sessions/all", self._endpoint("delete_all", self._delete_all))
        r.add_get("/v1/sessions/{session_id}", self._endpoint("get_session", self._get_session))
        r.add_delete("/v1/sessions/{session_id}", self._endpoint("delete", self._delete))
        r.add_get("/v1/billing", self._endpoint("billing", self._billing))
        # A page to navigate to, on loopback (the CDP checks' --cdp-navigate): no key, as
        # a browser would fetch it.  Counted in counters()["cdp"]["page_served"].
        r.add_get(PAGE_PATH, self._page)
        if self.cdp is not None:
            # The token in the URL is the credential: no API key on a CDP connection.
            r.add_get(ROUTE, self.cdp.handle)
        app.on_startup.append(self._start_ticker)
        app.on_shutdown.append(self._shutdown)
        if self._truth:
            r.add_get("/_sim/truth", self._admin(self._get_truth))
            r.add_get("/_sim/truth/{request_id}", self._admin(self._get_request_truth))
            r.add_get("/_sim/counters", self._admin(self._get_counters))
            r.add_get("/_sim/faults", self._admin(self._get_faults))
            r.add_put("/_sim/faults", self._admin(self._put_faults))
            r.add_post("/_sim/foreign", self._admin(self._post_foreign))
            r.add_get("/_sim/cdp/{session_id}", self._admin(self._get_cdp_truth))
        return app

    def bound(self, url: str) -> None:
        """The API listens at `url`: sessions' cdp_url can point at this server now."""
        if self.cdp is not None:
            self.cdp.bind(url)

    # ------------------------------------------------------------------ background

    async def _start_ticker(self, app: web.Application) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        """Advance the model on its own while sockets or browsers hang on its events.

        The model moves only when called; an expiry nobody polls for would otherwise
        leave a session's CDP socket or browser open until the next request.  Idle (no
        open socket, no browser) it wakes four times a second and does nothing.
        """
        while True:
            watched = (self.cdp is not None and self.cdp.open_connections > 0) or (
                self.browsers is not None and self.browsers.alive > 0
            )
            delay = 0.25
            if watched:
                now = self._clock()
                self.model.advance(now)
                following = self.model.next_event_time()
                if following is not None:
                    delay = min(0.25, max(0.002, following - now))
            await asyncio.sleep(delay)

    async def _shutdown(self, app: web.Application) -> None:
        """Stopping: close CDP sockets and kill every browser before the loop goes."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.cdp is not None:
            await self.cdp.close_all()
        if self.browsers is not None:
            await self.browsers.close()

    async def _page(self, request: web.Request) -> web.StreamResponse:
        self._pages_served += 1
        return web.Response(body=PAGE_HTML, content_type="text/html", charset="utf-8")

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error leaves as an ErrorResponse body, never aiohttp's text/plain page."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = {404: "Not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return self._err(exc.status, message, headers)
        except Exception:
            self.server_errors[request.path] += 1
            _log.exception("simulator error on %s %s", request.method, request.path)
            return self._err(500, "Internal server error (simulator bug)")

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get(API_KEY_HEADER)
        if given is None:
            return False
        raw = given.encode("utf-8", "surrogateescape")
        # compare_digest against every key (no early exit) keeps the check constant-time.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(raw, key)
        return ok

    def _endpoint(self, name: str, impl: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            # A redirect comes from in front of the API (a gateway or a moved host): it is
            # decided before the key is checked, and the request reaches nothing else.
            if self.dialect.redirecting:
                redirect = self.dialect.redirect(name, request.path_qs)
                if redirect is not None:
                    return self._redirect(request, *redirect)
            if not self._authorised(request):
                return self._err(401, "Invalid API Key")
            fault = self.injector.decide(name)
            if fault is NO_FAULT:
                return await impl(request)
            return await self._with_fault(request, fault, impl, name)

        return handler

    async def _with_fault(
        self, request: web.Request, fault: Fault, impl: Handler, endpoint: str
    ) -> web.StreamResponse:
        def count(kind: str) -> None:
            self.model.count_fault(kind, endpoint)

        if fault.delay_s:
            count(SLOW)
            await self._sleep(fault.delay_s)
        if fault.kind == MALFORMED:
            response = await impl(request)
            # Only a successful answer with a body is cut (a dialect's 201/202 too, never its
            # empty 204): a refusal stays a refusal, so the client and the model agree on
            # what was rejected, and the counters stay exact.
            body = response.body if isinstance(response, web.Response) else None
            if 200 <= response.status < 300 and isinstance(body, bytes) and body:
                count(MALFORMED)
                # A body cut in transit: valid JSON's first half, still labelled JSON.
                return web.Response(
                    body=body[: len(body) // 2], status=response.status, content_type=_JSON
                )
            return response
        if fault.kind is not None and fault.kind != SLOW:
            count(fault.kind)
        if fault.kind == DROPPED:
            # Close the socket without a byte of answer; the request never reached the model.
            # aiohttp's write of the returned response then fails quietly (ConnectionError).
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        if fault.status == 429:
            headers = self._rate_limit_headers(fault.retry_after_s, bucket=False)
            return self._err(429, fault.message, headers)
        if fault.status and self.dialect.params.server_error_retry_after:
            retry = self._retry_after(fault.retry_after_s, 503)
            return self._err(503, "Service Unavailable", {"Retry-After": retry})
        if fault.status:
            return self._err(fault.status, fault.message)
        return await impl(request)

    def _redirect(self, request: web.Request, code: int, target: str) -> web.Response:
        if target == SAME_ORIGIN:
            base = f"{request.scheme}://{request.host}"
        else:
            base = self.other_origin.url
            if not base:
                raise RuntimeError("a redirect to the other origin, which is not listening")
        return web.Response(status=code, headers={"Location": base + request.path_qs})

    def _retry_after(self, seconds: float, status: int) -> str:
        return self.dialect.retry_after(seconds, self.model.wall_time(self._clock()), status)

    def _rate_limit_headers(self, retry_after_s: float, *, bucket: bool) -> dict[str, str]:
        # The token bucket's state only explains the model's own rate-limit 429s; injected
        # ones and queue-full ones report the browser limit as exhausted.
        info = self.model.rate_limit_info(self._clock()) if bucket else None
        fmt = format_retry_after
        if info is not None:
            limit, remaining, reset, window = (
                info.limit, info.remaining, info.reset_s, info.window_s
            )
        else:
            limit = max(0, self.model.profile.capacity.max_concurrent_browsers)
            remaining, reset, window = 0, retry_after_s, retry_after_s
        return {
            "Retry-After": self._retry_after(retry_after_s, 429),
            "RateLimit": f"limit={limit}, remaining={remaining}, "
            f"reset={fmt(reset, self._time_scale)}",
            "RateLimit-Policy": f"{limit};w={fmt(window, self._time_scale)}",
        }

    # ------------------------------------------------------------------ API endpoints

    async def _create(self, request: web.Request) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            # Refuse before reading: no point buffering a body we will not accept.
            return self._err(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
        raw = await request.read()  # client_max_size makes chunked bodies past the cap raise 413
        try:
            config = parse_create_body(raw)
        except InputError as exc:
            return self._err(400, str(exc))
        result = self.model.create(config, self._clock())
        if isinstance(result, Rejected):
            headers = None
            if result.http_status == 429:
                retry = result.retry_after_s if result.retry_after_s is not None else 1.0
                headers = self._rate_limit_headers(retry, bucket=result.code == "rate_limited")
            return self._err(result.http_status, result.message, headers)
        return self._ok(bodies.created(result.request_id), self.dialect.params.create_status)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        request_id = request.match_info["request_id"]
        now = self._clock()
        view = self.model.request(request_id, now)
        if view is None or self.dialect.status_gone(view):
            return self._err(404, "Async request not found")
        if self.injector.status_faults.active or not self.dialect.status_is_static:
            return self._shaped_status(request_id, view, now)
        cached = self._status_cache.get(request_id)
        if cached is not None and cached[0] is view:
            body = cached[1]
        else:
            body = orjson.dumps(self.dialect.decorate(bodies.async_status(view)))
            self._status_cache[request_id] = (view, body)
        return web.Response(body=body, content_type=_JSON)

    def _shaped_status(
        self, request_id: str, view: AsyncRequestView, now: float
    ) -> web.Response:
        """A status answer through the status anomalies and the dialect (not cached)."""
        anomalies = self.injector.status_faults
        if anomalies.active:
            tracked = anomalies.track(request_id)
            if anomalies.wants_completion(tracked, view.status):
                view = self.model.complete_early(request_id, now) or view
            body = bodies.async_status(view)
            kind = anomalies.rewrite(tracked, body)
            if kind is not None:
                self.model.count_fault(kind, "status")
        else:
            body = bodies.async_status(view)
        return _json(200, self.dialect.rewrite_status(body, after_end=Dialect.after_end(view)))

    async def _get_session(self, request: web.Request) -> web.StreamResponse:
        view = self.model.get_session(request.match_info["session_id"], self._clock())
        if view is None:
            return self._err(404, "Session not found")
        return self._ok(bodies.session(view))

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        # By default an unknown id answers 401, not 404 (spec and logs agree), and ending an
        # ended session is answered like a fresh end; the dialect may say otherwise.
        result = self.model.end_session(request.match_info["session_id"], self._clock())
        status, body = self.dialect.delete_answer(result)
        if body is None:
            return web.Response(status=status)
        return _json(status, body)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        query = request.rel_url.query
        keys = [key for key, _ in query.items()]
        try:
            wanted = parse_list_query(query, keys)
        except InputError as exc:
            return self._err(400, str(exc))
        dialect = self.dialect
        views = self.model.list_sessions(
            dialect.list_tags(wanted["tags"]),
            self._clock(),
            include_ended=dialect.params.list_ended_sessions,
        )
        low, high = wanted["created_from"], wanted["created_to"]
        if low is not None:
            views = [v for v in views if v.created_at_wall >= low]
        if high is not None:
            views = [v for v in views if v.created_at_wall <= high]
        if wanted["playground"]:
            views = []  # simulated sessions are never playground sessions
        try:
            return _json(200, dialect.list_body(views, query, keys))
        except InputError as exc:
            return self._err(400, str(exc))

    async def _delete_all(self, request: web.Request) -> web.StreamResponse:
        self.model.end_all(self._clock())
        return self._ok(bodies.success())

    async def _billing(self, request: web.Request) -> web.StreamResponse:
        return self._ok(bodies.billing(self.model.billing(self._clock())))

    # ------------------------------------------------------------------ admin (/_sim)

    def _admin(self, impl: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            if not _is_loopback(request.remote):
                return _error(403, "Admin endpoints answer loopback peers only")
            return await impl(request)

        return handler

    def _counters(self) -> dict[str, Any]:
        counters = self.model.counters(self._clock())
        counters["server_errors"] = sum(self.server_errors.values())
        counters["dialect"] = self.dialect.counters()
        counters["other_origin"] = self.other_origin.counters()
        if self.cdp is not None:
            counters["cdp"] = self.cdp.counters()
        counters["pages_served"] = self._pages_served
        if self.browsers is not None:
            counters["browsers"] = self.browsers.counters()
        return counters

    async def _get_truth(self, request: web.Request) -> web.StreamResponse:
        truth = self.model.truth(self._clock())
        truth["counters"] = self._counters()
        if self.cdp is not None:
            truth["cdp"] = self.cdp.truth()
        if self.browsers is not None:
            truth["browsers"] = self.browsers.truth()
        return _json(200, truth)

    async def _get_cdp_truth(self, request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["session_id"]
        truth = self.cdp.session_truth(session_id) if self.cdp is not None else None
        if truth is None:
            return _error(404, "No CDP record for this session")
        return _json(200, truth)

    async def _get_request_truth(self, request: web.Request) -> web.StreamResponse:
        truth = self.model.request_truth(request.match_info["request_id"], self._clock())
        if truth is None:
            return _error(404, "Async request not found")
        return _json(200, truth)

    async def _get_counters(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self._counters())

    async def _post_foreign(self, request: web.Request) -> web.StreamResponse:
        """Start live sessions of the key that the run did not create: {count, tags?}."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"Request body is not valid JSON: {exc}")
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            return _error(400, "count must be an integer between 1 and 10000")
        tags = body.get("tags", list(self.dialect.params.foreign_tags))
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            return _error(400, "tags must be a list of non-empty strings")
        ids = self.model.add_foreign(count, tags, self._clock())
        return _json(200, {"session_ids": ids})

    async def _get_faults(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.injector.table())

    async def _put_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"Request body is not valid JSON: {exc}")
        try:
            table = parse_fault_table(body)
        except FaultConfigError as exc:
            return _error(400, str(exc))
        self.injector.replace(table)
        return _json(200, self.injector.table())


# ---------------------------------------------------------------------- running


@dataclass(frozen=True)
class ServerOptions:
    """Validated options of `bench simulate`."""

    host: str
    port: int
    profile: Profile
    truth: bool
    api_key: str
    # Stop when the process that started us is gone (the harness runs the simulator in
    # a session of its own, so nothing else would end it if the harness died).
    exit_with_parent: bool = False


def build_app(
    profile: Profile,
    *,
    api_keys: Sequence[str],
    truth: bool,
    clock: Callable[[], float] = time.monotonic,
) -> SimulatorApp:
    """A SimulatorApp with a fresh model; the seed (if any) fixes model and faults alike."""
    seed = profile.seed
    model_rng = random.Random(seed)
    # A separate stream for faults, so switching faults on does not change the model's draws.
    fault_rng = random.Random(f"faults:{seed}") if seed is not None else random.Random()
    # And one for the dialect's draws, so that a dialect shifts neither of the others.
    dialect_rng = random.Random(f"dialect:{seed}") if seed is not None else random.Random()
    model = SessionModel(profile, rng=model_rng, start_mono=clock(), start_wall=time.time())
    injector = FaultInjector(profile.faults, rng=fault_rng, time_scale=profile.time_scale)
    dialect = Dialect(profile.dialect, rng=dialect_rng, time_scale=profile.time_scale)
    cdp = browsers = None
    if profile.backend.kind == "chromium":
        from bench.simulator.browsers import BrowserPool

        browsers = BrowserPool(profile.backend, model, clock=clock)
        model.add_listener(browsers)
    elif profile.cdp.enabled:
        # CDP latencies draw from a stream of their own, like the faults and the dialect.
        cdp_rng = random.Random(f"cdp:{seed}") if seed is not None else random.Random()
        cdp = CdpEndpoint(
            profile.cdp, model, injector, rng=cdp_rng, time_scale=profile.time_scale,
            clock=clock, sleep=asyncio.sleep,
        )
        model.add_listener(cdp)
    return SimulatorApp(
        model,
        injector,
        dialect,
        api_keys=api_keys,
        truth=truth,
        time_scale=profile.time_scale,
        clock=clock,
        cdp=cdp,
        browsers=browsers,
    )


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _listen(app: web.Application, host: str, port: int, runners: list[web.AppRunner]) -> str:
    # No access log: it would cost more than the request itself under load.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    runners.append(runner)
    await web.TCPSite(runner, host, port, backlog=4096).start()
    return url_for(host, runner.addresses[0][1])


async def start(sim: SimulatorApp, host: str, port: int) -> tuple[str, list[web.AppRunner]]:
    """Bind the API, and the other origin when a redirect may point there (another port).

    Returns the API's URL and the runners, to be cleaned up in reverse order.
    """
    runners: list[web.AppRunner] = []
    try:
        url = await _listen(sim.build(), host, port, runners)
        sim.bound(url)
        if sim.needs_other_origin:
            sim.other_origin.url = await _listen(sim.other_origin.build(), host, 0, runners)
    except BaseException:
        await stop_runners(runners)
        raise
    return url, runners


async def stop_runners(runners: list[web.AppRunner]) -> None:
    for runner in reversed(runners):
        await runner.cleanup()


async def serve(options: ServerOptions, *, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set); announce the URL on stdout once bound."""
    sim = build_app(options.profile, api_keys=[options.api_key], truth=options.truth)
    url, runners = await start(sim, options.host, options.port)
    try:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        sys.stdout.write(f"{LISTENING_PREFIX}{url}\n")
        sys.stdout.flush()
        watcher = (
            asyncio.create_task(_stop_when_orphaned(os.getppid(), stop))
            if options.exit_with_parent
            else None
        )
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
    finally:
        await stop_runners(runners)


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    # A dead parent's children are re-parented: a changed ppid means it is gone.
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


def run(options: ServerOptions) -> int:
    """Run the server on uvloop when available; returns the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        asyncio.run(serve(options))
    else:
        uvloop.run(serve(options))
    return 0


__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_API_KEY",
    "LISTENING_PREFIX",
    "ServerOptions",
    "SimulatorApp",
    "build_app",
    "run",
    "serve",
    "start",
    "stop_runners",
    "url_for",
]
