"""The load path's own transport against a real HTTP server on loopback.

It runs under gevent's monkey-patching (as in Locust), so each check is a small
program in a subprocess; the server is a plain threaded http.server in this process
that records what it was sent and answers what each path asks for.
"""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEY = "load-transport-key"

# (status, headers, body) per request path, after the /edge prefix.
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/v1/sessions/async": (201, {}, b'{"data": {"request_id": "r1"}}'),
    "/v1/sessions/async/r1/status": (200, {}, b'{"data": {"status": "queued"}}'),
    "/v1/sessions/async/busy/status": (429, {"Retry-After": "7"}, b"{}"),
    "/v1/sessions/async/moved/status": (302, {"Location": "http://elsewhere.invalid/"}, b""),
    "/v1/sessions/async/zipped/status": (
        200, {"Content-Encoding": "gzip"}, gzip.compress(b'{"data": {"status": "ready"}}')
    ),
    "/v1/sessions/s1": (204, {}, b""),
}  # fmt: skip


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({
            "method": self.command, "path": self.path, "key": self.headers.get("anchor-api-key"),
            "accept_encoding": self.headers.get("Accept-Encoding"), "body": body.decode(),
        })  # fmt: skip
        path = self.path.removeprefix("/edge")
        status, headers, payload = ANSWERS.get(path, (404, {}, b"{}"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict]]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


PROGRAM = """
from gevent import monkey; monkey.patch_all()
import json, sys
from bench.measure.load_transport import LocustTransport
events = []
t = LocustTransport(sys.argv[1], sys.argv[2], lambda **kw: events.append(kw),
                    connection_timeout=2, network_timeout=2)
out = []
for call, arg in json.loads(sys.argv[3]):
    reply = getattr(t, call)(arg) if arg is not None else getattr(t, call)(b'{"x": 1}')
    out.append({"status": reply.status, "body": reply.body.decode(),
                "retry_after": reply.retry_after})
t.close()
print(json.dumps({"replies": out, "events": [
    {"type": e["request_type"], "name": e["name"], "length": e["response_length"],
     "ms": e["response_time"], "exception": repr(e["exception"]) if e["exception"] else None}
    for e in events]}))
"""


def _run(base: str, calls: list[tuple[str, str | None]]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, base, KEY, json.dumps(calls)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_calls_carry_the_key_under_the_hosts_prefix_and_fire_locust_events(server):
    base, seen = server
    out = _run(base + "/edge", [("create", None), ("status", "r1"), ("release", "s1")])
    assert [(s["method"], s["path"]) for s in seen] == [
        ("POST", "/edge/v1/sessions/async"),
        ("GET", "/edge/v1/sessions/async/r1/status"),
        ("DELETE", "/edge/v1/sessions/s1"),
    ]
    assert all(s["key"] == KEY for s in seen)
    assert seen[0]["body"] == '{"x": 1}'
    assert [r["status"] for r in out["replies"]] == [201, 200, 204]
    assert out["replies"][1]["body"] == '{"data": {"status": "queued"}}'
    # Locust's stats see each call under its stable name, as FastHttpSession reported it.
    assert [(e["type"], e["name"], e["exception"]) for e in out["events"]] == [
        ("POST", "create", None),
        ("GET", "/v1/sessions/async/[request_id]/status", None),
        ("DELETE", "/v1/sessions/[session_id]", None),
    ]
    assert out["events"][1]["length"] == len(b'{"data": {"status": "queued"}}')
    assert all(e["ms"] >= 0 for e in out["events"])


def test_ids_from_the_target_are_percent_encoded_into_the_path(server):
    base, seen = server
    out = _run(base, [("status", "a b/c"), ("release", "é?x")])
    assert [s["path"] for s in seen] == [
        "/v1/sessions/async/a%20b%2Fc/status", "/v1/sessions/%C3%A9%3Fx"
    ]
    assert [r["status"] for r in out["replies"]] == [404, 404]  # answered, not broken


def test_errors_redirects_and_compression(server):
    base, seen = server
    out = _run(base, [("status", "busy"), ("status", "moved"), ("status", "zipped")])
    busy, moved, zipped = out["replies"]
    # A 429 is an answer with its Retry-After, and a failure in Locust's stats.
    assert (busy["status"], busy["retry_after"]) == (429, "7")
    assert "LocustBadStatusCode" in out["events"][0]["exception"]
    assert "code=429" in out["events"][0]["exception"]
    # A redirect is an answer: never followed, so the key goes nowhere else.
    assert moved["status"] == 302 and len(seen) == 3
    assert out["events"][1]["exception"] is None
    # Nothing negotiated, and a body compressed unasked is inflated.
    assert all(s["accept_encoding"] is None for s in seen)
    assert json.loads(zipped["body"]) == {"data": {"status": "ready"}}


def test_a_refused_connection_is_status_0_and_a_failure():
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as httpd:
        port = httpd.server_address[1]  # bound, then closed: nothing listens there
    out = _run(f"http://127.0.0.1:{port}", [("status", "r1")])
    assert out["replies"][0]["status"] == 0
    assert out["events"][0]["exception"] is not None
