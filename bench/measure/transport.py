"""Transports: Locust's FastHttpSession (the load path) and httpx (clean-up, CLI checks, tests).

Both send the key only in the `anchor-api-key` header, verify TLS by the same
settings (bench.measure.tls), follow no redirect (a 3xx is an answer, never a hop:
the key must not reach another origin, and a redirected DELETE ends nothing), and
ignore proxy variables alike (the configuration refuses a host one would apply to).
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.measure.api import CREATE_PATH, LIST_PATH, RELEASE_NAME, STATUS_NAME, Reply
from bench.measure.tls import Tls

API_KEY_HEADER = "anchor-api-key"


class LocustTransport:
    """The hot path: FastHttpSession fires Locust request events itself (stable names)."""

    def __init__(self, client: Any, api_key: str) -> None:
        self._client = client
        self._headers = {API_KEY_HEADER: api_key, "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self._status_for: str | None = None  # the request whose status path is cached
        self._status_path = ""

    def _reply(self, response: Any) -> Reply:
        status = response.status_code or 0
        if status == 0:
            return Reply(0)
        # Header lookups cost on every poll (the hot path): only the answers that may
        # carry a Retry-After the driver honours are asked for one.
        retry_after = None
        if status in (429, 503):
            retry_after = (response.headers or {}).get("Retry-After")
        return Reply(status, response.content or b"", retry_after)

    def create(self, body: bytes) -> Reply:
        return self._reply(
            self._client.post(
                CREATE_PATH, data=body, headers=self._post_headers, name="create",
                allow_redirects=False,
            )
        )  # fmt: skip

    def status(self, request_id: str) -> Reply:
        if request_id != self._status_for:
            self._status_for = request_id
            self._status_path = f"/v1/sessions/async/{request_id}/status"
        return self._reply(
            self._client.get(
                self._status_path, headers=self._headers, name=STATUS_NAME, allow_redirects=False
            )
        )

    def release(self, session_id: str) -> Reply:
        return self._reply(
            self._client.delete(
                f"/v1/sessions/{session_id}", headers=self._headers, name=RELEASE_NAME,
                allow_redirects=False,
            )
        )  # fmt: skip


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


__all__ = ["API_KEY_HEADER", "HttpxTransport", "LocustTransport"]
