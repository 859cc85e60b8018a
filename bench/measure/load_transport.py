"""The load path's transport: one geventhttpclient connection per user, Locust events fired here.

Used only under Locust, with gevent's monkey-patching in place; Locust itself (whose
import patches) is imported at the first transport made, so that importing this
module (the load side's, say, in a unit test) patches nothing.  The clean-up and CLI
checks use bench.measure.transport's httpx client.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from geventhttpclient import HTTPClient
from geventhttpclient.url import URL

from bench.measure.api import CREATE_PATH, RELEASE_NAME, STATUS_NAME, Reply
from bench.measure.tls import Tls
from bench.measure.transport import API_KEY_HEADER


class LocustTransport:
    """The hot path: one geventhttpclient connection per user, Locust request events fired here.

    Locust's FastHttpSession wraps the same client in a user agent, a response
    wrapper, cookie handling and gzip negotiation; at saturation that wrapping cost
    nearly half the polls one core sends (benchmarks/harness_polls.py: 4,962 polls/s
    through FastHttpSession, 8,859 through this, the same afternoon).  Here each call
    is the request, one read of the body and one request event with Locust's own
    shape (method, stable name, ms, length, exception: a connection error, or
    LocustBadStatusCode for >= 400 as FastHttpSession reports it), so Locust's
    stats, web UI and CSV read as before.  Nothing is negotiated: no
    Accept-Encoding is sent, and a body compressed anyway is inflated.  Redirects
    are answers (the client never follows one); TLS is verified by the run's
    settings (bench.measure.tls); a connection the server closed is reopened by the
    client (and an idempotent request retried once), as under FastHttpSession.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        fire: Callable[..., Any],
        *,
        tls: Tls | None = None,
        connection_timeout: float = 5.0,
        network_timeout: float = 10.0,
    ) -> None:
        url = URL(base_url)
        self._prefix = url.path.rstrip("/")  # normalise_host keeps a path prefix
        tls = tls or Tls()
        self._client = HTTPClient.from_url(
            url, concurrency=1, connection_timeout=connection_timeout,
            network_timeout=network_timeout, ssl_context_factory=tls.context,
            insecure=not tls.verify,
        )  # fmt: skip
        from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, LocustBadStatusCode

        self._failures: tuple[type[BaseException], ...] = FAILURE_EXCEPTIONS
        self._bad_status = LocustBadStatusCode
        self._fire = fire
        self._base = base_url
        self._headers = {API_KEY_HEADER: api_key, "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self._status_for: str | None = None  # the request whose status path is cached
        self._status_path = ""

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, name: str, body: bytes = b"") -> Reply:
        headers = self._post_headers if body else self._headers
        started = time.perf_counter()
        start_time = time.time()
        try:
            response = self._client.request(method, path, body=body, headers=headers)
            try:
                content = response.read()
                status = response.status_code
                encoding = response.get("content-encoding")
                retry_after = response.get("retry-after") if status in (429, 503) else None
            finally:
                response.release()
            if encoding:
                content = _inflate(content, str(encoding))
        except self._failures as exc:
            self._event(method, name, started, start_time, path, 0, exc)
            return Reply(0)
        error = self._bad_status(self._base + path, code=status) if status >= 400 else None
        self._event(method, name, started, start_time, path, len(content), error)
        return Reply(status, content, retry_after if isinstance(retry_after, str) else None)

    def _event(
        self, method: str, name: str, started: float, start_time: float, path: str,
        length: int, exception: BaseException | None,
    ) -> None:  # fmt: skip
        self._fire(
            request_type=method, name=name,
            response_time=(time.perf_counter() - started) * 1000.0, response_length=length,
            response=None, context={}, exception=exception, start_time=start_time,
            url=self._base + path,
        )  # fmt: skip

    def create(self, body: bytes) -> Reply:
        return self._call("POST", self._prefix + CREATE_PATH, "create", body)

    # Ids come from the target: percent-encoded into the path, so an odd one (a space,
    # a slash, a character outside latin-1) is a request for that id, never a broken
    # request line or another path.

    def status(self, request_id: str) -> Reply:
        if request_id != self._status_for:
            self._status_for = request_id
            quoted = quote(request_id, safe="")
            self._status_path = f"{self._prefix}/v1/sessions/async/{quoted}/status"
        return self._call("GET", self._status_path, STATUS_NAME)

    def release(self, session_id: str) -> Reply:
        path = f"{self._prefix}/v1/sessions/{quote(session_id, safe='')}"
        return self._call("DELETE", path, RELEASE_NAME)


def _inflate(content: bytes, encoding: str) -> bytes:
    """A body the server compressed unasked (gzip or deflate); anything else as it came."""
    kind = encoding.strip().lower()
    try:
        if kind in ("gzip", "x-gzip"):
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if kind == "deflate":
            return zlib.decompress(content)
    except zlib.error:
        return content  # the parser then names it: not JSON
    return content


__all__ = ["LocustTransport"]
