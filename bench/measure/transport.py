"""Transports: httpx outside the load loop (clean-up, CLI checks, tests); the load path is
bench.measure.load_transport.

Both send the key only in the `anchor-api-key` header, verify TLS by the same
settings (bench.measure.tls), follow no redirect (a 3xx is an answer, never a hop:
the key must not reach another origin, and a redirected DELETE ends nothing), and
ignore proxy variables alike (the configuration refuses a host one would apply to).
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.measure.api import CREATE_PATH, LIST_PATH, Reply
from bench.measure.tls import Tls

API_KEY_HEADER = "anchor-api-key"


class HttpxTransport:
    """Outside the load loop (clean-up, CLI checks, tests): one kept-alive httpx client."""

    def __init__(
        self, base_url: str, api_key: str, tls: Tls | None = None, timeout: float = 10.0
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url,
            headers={API_KEY_HEADER: api_key},
            timeout=timeout,
            verify=(tls or Tls()).context(),
            follow_redirects=False,
            trust_env=False,  # no proxy, no SSL_CERT_FILE: the same route as the load path
        )

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Reply:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError:
            return Reply(0)
        return Reply(response.status_code, response.content, response.headers.get("Retry-After"))

    def create(self, body: bytes) -> Reply:
        return self._call(
            "POST", CREATE_PATH, content=body, headers={"Content-Type": "application/json"}
        )

    def status(self, request_id: str) -> Reply:
        return self._call("GET", f"/v1/sessions/async/{request_id}/status")

    def release(self, session_id: str) -> Reply:
        return self._call("DELETE", f"/v1/sessions/{session_id}")

    def get_session(self, session_id: str) -> Reply:
        return self._call("GET", f"/v1/sessions/{session_id}")

    def list_sessions(self, tag: str, **page: str) -> Reply:
        return self._call("GET", LIST_PATH, params={"tags": tag, **page})

    def list_tagged(self, tag: str) -> Reply:
        return self.list_sessions(tag)


__all__ = ["API_KEY_HEADER", "HttpxTransport"]
