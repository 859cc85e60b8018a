"""bench.measure.cdp_client against the simulator's CDP endpoint on loopback (and TLS).

The client's instants are checked against the simulator's truth: both use the machine's
monotonic clock (CLOCK_MONOTONIC on Linux, for time.monotonic in either process), so
the client must have sent each command before the simulator read it and read each
answer after the simulator sent it.  Every error kind is provoked for real, and no text
the client produces (or any log line) may carry the URL's secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import WSMsgType, web
from cdp_helpers import (
    COMMAND_S,
    FIRST_S,
    HANDSHAKE_S,
    NAVIGATE_S,
    cdp_fixtures,
    ready_session,
    wait_until,
    write_profile,
)

from bench.measure import cdp_client
from bench.measure.cdp_client import CdpResult, connect_check, redact_url
from bench.simulator.process import SimulatorProcess

KEY = "cdp-client-key"
ROOT = Path(__file__).resolve().parent.parent


sim, api, faults = cdp_fixtures(seed=11, key=KEY, folder="cdp-client")


def connection_truth(sim: SimulatorProcess, session_id: str, index: int = 0) -> dict[str, Any]:
    truth = httpx.get(f"{sim.url}/_sim/cdp/{session_id}", timeout=10).json()
    return truth["connections"][index]


def check(url: str, **kwargs: Any) -> CdpResult:
    return connect_check(url, clock=time.monotonic, **kwargs)


# ---------------------------------------------------------------------- timing


def test_times_are_bracketed_by_the_truth(sim, api):
    session = ready_session(api)["session"]
    result = check(session["cdp_url"], navigate_url=sim.url + "/_sim/page", timeout=10)
    assert result.ok, result
    assert result.error is None and result.cause == "" and result.stage == ""
    assert result.browser == "HeadlessChrome/156.0.0.0"
    truth = connection_truth(sim, session["session_id"])
    commands = {c["method"]: c for c in truth["commands"]}
    # Open: the upgrade was read after the client started and answered before it saw 101.
    assert result.started <= truth["upgrade"]["mono"] <= truth["accepted"]["mono"]
    assert truth["accepted"]["mono"] <= result.connect
    # First command: sent, read by the simulator, answered, read by the client, in order.
    first = truth["commands"][0]
    assert first["method"] == "Browser.getVersion"
    assert result.marks["first_command_sent"] <= first["received"]["mono"]
    assert first["answered"]["mono"] <= result.first_command
    # Navigation: from createTarget's sending to the load event's reading.
    load = next(e for e in truth["events"] if e["method"] == "Page.loadEventFired")
    assert result.marks["navigate_started"] <= commands["Target.createTarget"]["received"]["mono"]
    assert load["sent"]["mono"] <= result.navigate
    # So each measured time is at least what the simulator spent, which the model fixes.
    assert result.connect_s >= truth["accepted"]["mono"] - truth["upgrade"]["mono"] >= HANDSHAKE_S
    served = first["answered"]["mono"] - first["received"]["mono"]
    assert result.first_command_s >= served >= FIRST_S
    # createTarget, attachToTarget, Page.enable and Page.navigate, then the load.
    assert result.navigate_s >= 4 * COMMAND_S + NAVIGATE_S
    # And at most a little more: loopback adds well under the 0.25 s allowed here.
    assert result.connect_s < HANDSHAKE_S + 0.25
    assert result.first_command_s < served + 0.25
    # The page was closed and the socket closed by the client.
    assert "Target.closeTarget" in commands
    assert truth["closed_by"] == "client"
    assert result.marks["closed"] >= result.navigate


def test_without_navigation_only_connect_and_first_command(sim, api):
    session = ready_session(api)["session"]
    result = check(session["cdp_url"])
    assert result.ok and result.navigate is None and result.navigate_s is None
    assert result.connect_s is not None and result.first_command_s is not None
    truth = connection_truth(sim, session["session_id"])
    assert [c["method"] for c in truth["commands"]] == ["Browser.getVersion"]


# ---------------------------------------------------------------------- error kinds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_by_an_http_status(api, faults):
    session = ready_session(api)["session"]
    faults.set_faults({"cdp": {"rate_5xx": 1.0}})
    result = check(session["cdp_url"])
    assert (result.ok, result.error, result.stage) == (False, "refused", "connect")
    assert result.http_status in (500, 502, 503)
    assert result.connect is None and result.first_command is None


def test_refused_once_the_session_ended(api):
    session = ready_session(api)["session"]
    assert api.delete(f"/v1/sessions/{session['session_id']}").status_code == 200
    result = check(session["cdp_url"])
    assert (result.error, result.http_status) == ("refused", 404)


def test_refused_by_a_closed_port():
    result = check(f"ws://127.0.0.1:{free_port()}/devtools/browser/x?token=abcd1234")
    assert (result.error, result.cause) == ("refused", "connection refused (connect)")


def test_closed_before_the_first_answer(api, faults):
    session = ready_session(api)["session"]
    faults.set_faults({"cdp": {"rate_drop": 1.0}})
    result = check(session["cdp_url"])
    assert (result.error, result.stage) == ("closed", "Browser.getVersion")
    assert result.connect is not None and result.first_command is None


def test_closed_when_the_session_ends_mid_check(sim, api, faults):
    session = ready_session(api)["session"]
    sid = session["session_id"]
    # Each answer takes 0.5 s; the session is ended while the first one is awaited.
    faults.set_faults({"cdp": {"rate_slow": 1.0, "slow_s": 25.0}})

    def end_once_a_command_is_waiting() -> None:
        wait_until(
            lambda: any(
                c["commands"]
                for c in (
                    httpx.get(f"{sim.url}/_sim/cdp/{sid}", timeout=10).json().get("connections")
                    or []
                )
            ),
            "the check's first command reached the simulator",
        )
        api.delete(f"/v1/sessions/{sid}")

    ender = threading.Thread(target=end_once_a_command_is_waiting)
    ender.start()
    result = check(session["cdp_url"], timeout=10)
    ender.join()
    assert (result.error, result.stage) == ("closed", "Browser.getVersion")
    assert "code 1001: session ended" in result.cause


def test_malformed_answer_is_a_protocol_error(api, faults):
    session = ready_session(api)["session"]
    faults.set_faults({"cdp": {"rate_malformed": 1.0}})
    result = check(session["cdp_url"])
    assert (result.error, result.stage) == ("protocol", "Browser.getVersion")


def test_timeout_bounds_the_whole_check(api, faults):
    session = ready_session(api)["session"]
    faults.set_faults({"cdp": {"rate_slow": 1.0, "slow_s": 100.0}})  # 2 s per answer
    result = check(session["cdp_url"], timeout=0.3)
    assert result.error == "timeout"
    # The deadline held (closing adds at most its own short budget).
    assert result.marks["closed"] - result.started < 0.3 + 1.5


def test_cdp_error_and_navigate_failed(sim, api):
    session = ready_session(api)["session"]
    bad = check(session["cdp_url"], navigate_url="no scheme")
    assert (bad.error, bad.stage) == ("cdp_error", "Page.navigate")
    assert "-32000" in bad.cause and bad.first_command is not None
    failed = check(session["cdp_url"], navigate_url="http://nowhere.invalid/")
    assert (failed.error, failed.stage) == ("navigate_failed", "Page.navigate")
    assert "net::ERR_NAME_NOT_RESOLVED" in failed.cause
    # Both closed their page on the way out.
    for index in (0, 1):
        methods = [
            c["method"] for c in connection_truth(sim, session["session_id"], index)["commands"]
        ]
        assert methods[-1] == "Target.closeTarget"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/x?token=secret1", "ws://", "ws://h:99999/", "not a url"]
)
def test_bad_url(url):
    result = check(url)
    assert (result.ok, result.error) == (False, "bad_url")
    assert "secret1" not in result.cause


# ---------------------------------------------------------------------- secrets


def test_redact_url():
    assert redact_url("ws://user:pw@host:9222/devtools/browser/x?token=abc#frag") == (
        "ws://host:9222/devtools/browser/x?<redacted>"
    )
    assert redact_url("wss://connect.example.com?apiKey=k&sessionId=s") == (
        "wss://connect.example.com?<redacted>"
    )
    assert redact_url("ws://[::1]:80/p") == "ws://[::1]:80/p"
    assert redact_url("ws://h:bad/") == "<unparseable URL>"


def test_secrets_never_appear_in_causes_or_logs(sim, api, faults, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, websocket-client's included
    session = ready_session(api)["session"]
    url = session["cdp_url"]
    token = url.split("token=", 1)[1]
    userinfo = url.replace("ws://", "ws://someone:hunter2pw@")
    results = [check(url, navigate_url="no scheme"), check(userinfo, navigate_url="no scheme")]
    for table in (
        {"rate_5xx": 1.0},
        {"rate_drop": 1.0},
        {"rate_malformed": 1.0},
        {"rate_slow": 1.0, "slow_s": 100.0},
    ):
        faults.set_faults({"cdp": table})
        results.append(check(url, timeout=0.5))
        results.append(check(userinfo, timeout=0.5))
    faults.set_faults({})
    results.append(check(url.replace("ws://", "http://")))
    results.append(check(f"ws://127.0.0.1:{free_port()}/x?token={token}"))
    assert api.delete(f"/v1/sessions/{session['session_id']}").status_code == 200
    results.append(check(url))
    kinds = {r.error for r in results}
    assert kinds == {"cdp_error", "refused", "closed", "protocol", "timeout", "bad_url"}
    for result in results:
        text = repr(result) + result.cause
        assert token not in text and "hunter2pw" not in text
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert token not in logged and "hunter2pw" not in logged


def test_scrub_removes_every_secret_piece():
    url = "wss://u:passw0rd@h/p?apiKey=k3y-value&sessionId=abcd&x=1#fragment"
    text = f"saw {url} and k3y-value and passw0rd and fragment, x=1"
    scrubbed = cdp_client._scrub(text, url)
    for secret in ("k3y-value", "passw0rd", "fragment", "apiKey=", url):
        assert secret not in scrubbed
    assert scrubbed.startswith("saw <redacted>")


# ---------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, trustme.CA]]:
    """A wss:// server on 127.0.0.1 answering Browser.getVersion, with a throwaway CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                ident = json.loads(message.data)["id"]
                await ws.send_json({"id": ident, "result": {"product": "TLS/1"}})
        return ws

    app = web.Application()
    app.router.add_get("/devtools/browser/x", handler)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return runner.addresses[0][1]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"wss://127.0.0.1:{port}/devtools/browser/x?token=tls-secret-1", ca
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_tls_verifies_by_default(tls_server):
    url, _ = tls_server
    result = check(url)
    assert result.error == "tls" and "certificate verification failed" in result.cause
    assert "tls-secret-1" not in result.cause


def test_tls_with_a_ca_bundle_or_insecure(tls_server, tmp_path):
    url, ca = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    trusted = check(url, ca_bundle=str(bundle))
    assert trusted.ok and trusted.browser == "TLS/1"
    assert check(url, insecure=True).ok
    # The bundle vouches for 127.0.0.1 only: another name for the same server is refused.
    other = check(url.replace("127.0.0.1", "localhost"), ca_bundle=str(bundle))
    assert other.error == "tls"


# ---------------------------------------------------------------------- gevent

GEVENT_SCRIPT = textwrap.dedent("""
    import sys
    if sys.argv[1] == "patch":
        from gevent import monkey
        monkey.patch_all()
    import json, time
    import gevent
    from bench.measure.cdp_client import connect_check
    jobs = [gevent.spawn(connect_check, url, timeout=10, clock=time.monotonic)
            for url in sys.argv[2:]]
    gevent.joinall(jobs, raise_error=True)
    print(json.dumps([{"ok": j.value.ok, "error": j.value.error, "started": j.value.started,
                       "connect": j.value.connect, "first_command": j.value.first_command}
                      for j in jobs]))
""")


def run_two_checks(mode: str, urls: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, mode, *urls],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_checks_overlap_under_gevent(tmp_path):
    # A 0.3 s handshake: two checks that wait for it side by side take one handshake, not two.
    path = write_profile(
        tmp_path,
        "slow-handshake",
        'extends = "fast"\n[cdp.handshake]\ndist = "fixed"\nvalue_s = 15.0\n',
    )
    with (
        SimulatorProcess(path, seed=3, truth=True, api_key=KEY) as process,
        httpx.Client(base_url=process.url, headers={"anchor-api-key": KEY}, timeout=10) as client,
    ):
        sessions = [ready_session(client)["session"] for _ in range(2)]
        urls = [s["cdp_url"] for s in sessions]

        def upgrades_and_accepts() -> tuple[list[float], list[float]]:
            truth = process.truth()["cdp"]
            conns = [truth[s["session_id"]]["connections"][-1] for s in sessions]
            return [c["upgrade"]["mono"] for c in conns], [c["accepted"]["mono"] for c in conns]

        patched = run_two_checks("patch", urls)
        assert all(r["ok"] for r in patched), patched
        upgrades, accepts = upgrades_and_accepts()
        # Both upgrades reached the simulator before either was accepted: neither check
        # blocked the process while it waited.
        assert max(upgrades) < min(accepts)
        a, b = patched
        assert b["started"] < a["connect"] and a["started"] < b["connect"]

        # The control: without monkey-patching the same greenlets block each other, so
        # the test above can tell a cooperative client from a blocking one.
        plain = run_two_checks("plain", urls)
        assert all(r["ok"] for r in plain), plain
        upgrades, accepts = upgrades_and_accepts()
        assert max(upgrades) > min(accepts)
