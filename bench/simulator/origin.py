"""The other origin: a second loopback listener that cross-origin redirects point to.

It serves nothing: it records each request (method, path, and whether it carried the
API key header, never the key itself) and answers 401 `Invalid API Key`, as another
API host that does not know this key would.  A client that follows a redirect there
with the key has leaked it to another origin; the counters say so.  Nothing it
receives reaches the model, so a redirected DELETE ends nothing.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from aiohttp import web

from bench.simulator import bodies

# Requests kept in `recent` (the counts cover every one).
_RECENT = 1000


class OtherOrigin:
    """The recording listener's app and counters; `url` is set once it is bound."""

    def __init__(self, api_key_header: str) -> None:
        self._header = api_key_header
        self.url = ""
        self._requests = 0
        self._with_key = 0
        self._by_method: Counter[str] = Counter()
        self._recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        return app

    async def _record(self, request: web.Request) -> web.StreamResponse:
        carried = self._header in request.headers
        self._requests += 1
        self._with_key += carried
        self._by_method[request.method] += 1
        self._recent.append(
            {"method": request.method, "path": request.path_qs, "with_api_key": carried}
        )
        return web.Response(
            body=bodies.error_bytes(401, "Invalid API Key"),
            status=401,
            content_type="application/json",
        )

    def counters(self) -> dict[str, Any]:
        """`url` ("" when not listening), totals, and the most recent requests, oldest first."""
        return {
            "url": self.url,
            "requests": self._requests,
            "with_api_key": self._with_key,
            "by_method": dict(self._by_method),
            "recent": list(self._recent),
        }


__all__ = ["OtherOrigin"]
