"""Transports for the journey driver: Locust's FastHttpSession (load path) and httpx (clean-up)."""

from __future__ import annotations

from typing import Any

import httpx

from bench.measure.driver import CREATE_PATH, RELEASE_NAME, STATUS_NAME, Reply

API_KEY_HEADER = "anchor-api-key"


class LocustTransport:
    """The hot path: FastHttpSession fires Locust request events itself (stable names)."""

    def __init__(self, client: Any, api_key: str) -> None:
        self._client = client
        self._headers = {API_KEY_HEADER: api_key, "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}

    def _reply(self, response: Any) -> Reply:
        status = response.status_code or 0
        if status == 0:
            return Reply(0)
        headers = response.headers or {}
        return Reply(status, response.content or b"", headers.get("Retry-After"))

    def create(self, body: bytes) -> Reply:
        return self._reply(
            self._client.post(CREATE_PATH, data=body, headers=self._post_headers, name="create")
        )

    def status(self, request_id: str) -> Reply:
        return self._reply(
            self._client.get(
                f"/v1/sessions/async/{request_id}/status", headers=self._headers, name=STATUS_NAME
            )
        )

    def release(self, session_id: str) -> Reply:
        return self._reply(
            self._client.delete(
                f"/v1/sessions/{session_id}", headers=self._headers, name=RELEASE_NAME
            )
        )


class HttpxTransport:
    """Outside the load loop (clean-up sweeps, CLI checks, tests): plain httpx."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={API_KEY_HEADER: api_key}, timeout=timeout
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

    def list_tagged(self, tag: str) -> Reply:
        return self._call("GET", "/v1/sessions/all/status", params={"tags": tag})
