"""The simulator's CDP endpoint on loopback: its answers, latencies, faults, and its end.

A real `bench simulate` child (fast profile, fixed CDP latencies) and a bare websocket:
every answer's shape is checked as CDP writes it, every latency against the modelled
value and the truth's instants, every fault against the counters.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import websocket
from cdp_helpers import (
    COMMAND_S,
    FIRST_S,
    HANDSHAKE_S,
    NAVIGATE_S,
    RawCdp,
    cdp_fixtures,
    ready_session,
    wait_until,
    write_profile,
)

from bench.simulator.process import SimulatorProcess
from bench.simulator.profile import ProfileError, load_profile

KEY = "cdp-test-key"
HEX32 = re.compile(r"^[0-9A-F]{32}$")


sim, api, faults = cdp_fixtures(seed=7, key=KEY, folder="cdp-profiles")


def cdp_truth(sim: SimulatorProcess, session_id: str) -> dict[str, Any]:
    response = httpx.get(f"{sim.url}/_sim/cdp/{session_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_cdp_url_is_the_simulators_own_port_with_a_token(sim, api):
    session = ready_session(api)["session"]
    url = session["cdp_url"]
    match = re.fullmatch(
        rf"ws://127\.0\.0\.1:{sim.port}/cdp/{session['session_id']}\?token=([0-9a-f]{{32}})", url
    )
    assert match, url


def test_answers_follow_cdp_shapes(sim, api):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    try:
        version = cdp.call("Browser.getVersion")
        assert version["id"] == 1 and set(version) == {"id", "result"}
        assert version["result"]["product"] == "HeadlessChrome/156.0.0.0"
        assert version["result"]["protocolVersion"] == "1.3"
        assert "userAgent" in version["result"]

        created = cdp.call("Target.createTarget", {"url": "about:blank"})
        target = created["result"]["targetId"]
        assert HEX32.match(target)
        attached = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = attached["result"]["sessionId"]
        assert HEX32.match(page) and page != target
        # Chrome announces the attachment before answering the command.
        event = cdp.events.pop()
        assert event["method"] == "Target.attachedToTarget"
        assert event["params"]["sessionId"] == page
        assert event["params"]["targetInfo"]["targetId"] == target

        enabled = cdp.call("Page.enable", session_id=page)
        assert enabled == {"id": 4, "result": {}, "sessionId": page}
        navigated = cdp.call("Page.navigate", {"url": sim.url + "/_sim/page"}, session_id=page)
        assert navigated["sessionId"] == page
        assert navigated["result"]["frameId"] == target and HEX32.match(
            navigated["result"]["loaderId"]
        )
        loaded = cdp.event("Page.loadEventFired")
        assert loaded["sessionId"] == page and isinstance(loaded["params"]["timestamp"], float)

        closed = cdp.call("Target.closeTarget", {"targetId": target})
        assert closed == {"id": 6, "result": {"success": True}}
        detached = cdp.event("Target.detachedFromTarget")
        assert detached["params"] == {"sessionId": page, "targetId": target}
        # The page session is gone with its target.
        gone = cdp.call("Page.enable", session_id=page)
        assert gone["error"] == {"code": -32001, "message": "Session with given id not found."}
    finally:
        cdp.close()
    truth = cdp_truth(sim, session["session_id"])
    assert truth["connects"] == 1 and truth["commands"] == 7
    assert truth["navigations"] == 1 and truth["load_events"] == 1
    methods = [c["method"] for c in truth["connections"][0]["commands"]]
    assert methods == [
        "Browser.getVersion",
        "Target.createTarget",
        "Target.attachToTarget",
        "Page.enable",
        "Page.navigate",
        "Target.closeTarget",
        "Page.enable",
    ]
    assert truth["connections"][0]["closed_by"] == "client"


def test_errors_follow_cdp_shapes(api):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    try:
        assert cdp.call("Nope.method")["error"] == {
            "code": -32601,
            "message": "'Nope.method' wasn't found",
        }
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        refused = cdp.call("Target.attachToTarget", {"targetId": target})
        assert refused["error"]["code"] == -32000  # only flatten mode
        missing = cdp.call("Target.attachToTarget", {"targetId": "X" * 32, "flatten": True})
        assert missing["error"] == {"code": -32602, "message": "No target with given id found"}
        assert cdp.call("Target.createTarget", {"url": 5})["error"]["code"] == -32602
        cdp.ws.send("{not json")
        assert cdp.read() == {"error": {"code": -32700, "message": "Message must be a valid JSON"}}
        cdp.ws.send('{"method": "Browser.getVersion"}')
        assert cdp.read()["error"]["code"] == -32600
        page = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["result"][
            "sessionId"
        ]
        invalid = cdp.call("Page.navigate", {"url": "no scheme"}, session_id=page)
        assert invalid["error"] == {"code": -32000, "message": "Cannot navigate to invalid URL"}
        # A name that cannot resolve: answered with an errorText, and no load event.
        failed = cdp.call("Page.navigate", {"url": "http://nowhere.invalid/"}, session_id=page)
        assert failed["result"]["errorText"] == "net::ERR_NAME_NOT_RESOLVED"
    finally:
        cdp.close()


def test_latencies_are_the_modelled_ones_and_the_truth_brackets_them(sim, api):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    try:
        cdp.call("Browser.getVersion")
        cdp.call("Browser.getVersion")
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        page = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["result"][
            "sessionId"
        ]
        cdp.call("Page.enable", session_id=page)
        cdp.call("Page.navigate", {"url": sim.url + "/_sim/page"}, session_id=page)
        cdp.event("Page.loadEventFired")
    finally:
        cdp.close()
    connection = cdp_truth(sim, session["session_id"])["connections"][0]
    handshake = connection["accepted"]["mono"] - connection["upgrade"]["mono"]
    assert HANDSHAKE_S <= handshake < HANDSHAKE_S + 0.5
    commands = connection["commands"]
    served = [c["answered"]["mono"] - c["received"]["mono"] for c in commands]
    assert FIRST_S <= served[0] < FIRST_S + 0.5  # the first command's own latency
    for delay in served[1:]:
        assert COMMAND_S <= delay < COMMAND_S + 0.5
    # The load event follows the navigate answer by the navigate latency.
    load = next(e for e in connection["events"] if e["method"] == "Page.loadEventFired")
    navigate = next(c for c in commands if c["method"] == "Page.navigate")
    gap = load["sent"]["mono"] - navigate["answered"]["mono"]
    assert NAVIGATE_S <= gap < NAVIGATE_S + 0.5
    assert connection["accepted"]["t"] == pytest.approx(
        connection["accepted"]["mono"]
        - (connection["upgrade"]["mono"] - connection["upgrade"]["t"])
    )


@pytest.mark.parametrize(
    ("table", "status"), [({"rate_5xx": 1.0}, {500, 502, 503}), ({"rate_429": 1.0}, {429})]
)
def test_refused_fault_answers_the_upgrade_with_an_http_error(sim, api, faults, table, status):
    session = ready_session(api)["session"]
    before = sim.counters()
    faults.set_faults({"cdp": table})
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        RawCdp(session["cdp_url"])
    assert caught.value.status_code in status
    if 429 in status:
        assert "retry-after" in {k.lower() for k in caught.value.resp_headers}
    after = sim.counters()
    assert after["cdp"]["refused"]["fault"] == before["cdp"]["refused"]["fault"] + 1
    assert after["cdp"]["faults"]["refused"] == before["cdp"]["faults"].get("refused", 0) + 1
    assert after["faults_by_endpoint"]["cdp"]["refused"] >= 1
    truth = cdp_truth(sim, session["session_id"])
    assert truth["connects"] == 0 and truth["faults"] == {"refused": 1}
    assert [r["reason"] for r in truth["refused"]] == ["fault"]


def test_closed_fault_drops_the_socket_before_an_answer(sim, api, faults):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    faults.set_faults({"cdp": {"rate_drop": 1.0}})
    cdp.send("Browser.getVersion")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        cdp.read()
    cdp.ws.shutdown()
    truth = wait_until(
        lambda: (t := cdp_truth(sim, session["session_id"]))["connections"][0]["closed"] and t,
        "the server records the close",
    )
    command = truth["connections"][0]["commands"][0]
    assert command["answered"] is None and command["fault"] == "closed"
    assert truth["connections"][0]["closed_by"] == "fault"
    assert truth["faults"] == {"closed": 1}


def test_malformed_fault_cuts_an_answer(sim, api, faults):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    try:
        faults.set_faults({"cdp": {"rate_malformed": 1.0}})
        cdp.send("Browser.getVersion")
        text = cdp.ws.recv()
        assert text.startswith('{"id":1') and not text.endswith("}")
    finally:
        cdp.close()
    assert cdp_truth(sim, session["session_id"])["faults"] == {"malformed": 1}


def test_slow_fault_delays_an_answer_by_slow_s(sim, api, faults):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    try:
        # slow_s is unscaled: 10 s x 0.02 = 0.2 s on top of the first command's 30 ms.
        faults.set_faults({"cdp": {"rate_slow": 1.0, "slow_s": 10.0}})
        assert "result" in cdp.call("Browser.getVersion")
    finally:
        cdp.close()
    truth = cdp_truth(sim, session["session_id"])
    command = truth["connections"][0]["commands"][0]
    assert command["fault"] == "slow"
    assert command["answered"]["mono"] - command["received"]["mono"] >= FIRST_S + 0.2
    assert truth["faults"] == {"slow": 1}


def test_tokens_are_checked_before_anything_else(sim, api):
    session = ready_session(api)["session"]
    url = session["cdp_url"]
    for wrong in (
        url.split("?")[0],
        url[:-4] + "0000",
        url.replace(session["session_id"], "0" * 36),
    ):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            RawCdp(wrong)
        assert caught.value.status_code == 401
    response = httpx.get(url.replace("ws://", "http://"), timeout=10)  # no upgrade asked
    assert response.status_code == 400


def test_delete_closes_open_sockets_and_refuses_new_ones(sim, api):
    session = ready_session(api)["session"]
    cdp = RawCdp(session["cdp_url"])
    cdp.call("Browser.getVersion")
    before = sim.counters()["cdp"]
    assert api.delete(f"/v1/sessions/{session['session_id']}").status_code == 200
    opcode, data = cdp.ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert data == (1001).to_bytes(2, "big") + b"session ended"
    cdp.ws.shutdown()
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        RawCdp(session["cdp_url"])
    assert caught.value.status_code == 404
    after = sim.counters()["cdp"]
    assert after["refused"]["ended"] == before["refused"]["ended"] + 1
    assert after["closed_by"]["session_end"] == before["closed_by"]["session_end"] + 1
    truth = cdp_truth(sim, session["session_id"])
    assert truth["connections"][0]["closed_by"] == "session_end"


def test_expiry_closes_an_idle_socket_without_any_request(sim, api):
    # idle_timeout 1 min x 0.02 = 1.2 s; nobody polls meanwhile: the server's own ticker
    # must notice the expiry and close the socket.
    session = ready_session(api, {"timeout": {"idle_timeout": 1}})["session"]
    cdp = RawCdp(session["cdp_url"], timeout=20)
    cdp.call("Browser.getVersion")
    opcode, data = cdp.ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_CLOSE and data.endswith(b"session ended")
    cdp.ws.shutdown()
    truth = sim.truth()
    request = next(r for r in truth["requests"] if r["session_id"] == session["session_id"])
    assert request["ended"]["by"] == "idle_timeout"
    assert truth["cdp"][session["session_id"]]["connections"][0]["closed_by"] == "session_end"


def test_page_is_served_and_counted(sim):
    before = sim.counters()["pages_served"]
    response = httpx.get(sim.url + "/_sim/page", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert b"<title>bench page</title>" in response.content
    assert sim.counters()["pages_served"] == before + 1


def test_cdp_disabled_leaves_an_unserved_url(tmp_path):
    path = write_profile(tmp_path, "no-cdp", 'extends = "fast"\n[cdp]\nenabled = false\n')
    with (
        SimulatorProcess(path, seed=1, api_key=KEY) as process,
        httpx.Client(base_url=process.url, headers={"anchor-api-key": KEY}, timeout=10) as client,
    ):
        session = ready_session(client)["session"]
        assert session["cdp_url"] == (
            f"wss://connect.simulator.invalid?sessionId={session['session_id']}"
        )
        assert httpx.get(f"{process.url}/cdp/{session['session_id']}").status_code == 404
        assert "cdp" not in process.counters()


def test_profile_sections_are_validated(tmp_path):
    def load(text: str) -> Any:
        return load_profile(write_profile(tmp_path, "p", 'extends = "fast"\n' + text))

    assert load("[faults.cdp]\nrate_drop = 0.5\n").faults["cdp"].rate_drop == 0.5
    # [faults.all] is about the HTTP API: the flaky profile leaves CDP alone.
    assert "cdp" not in load_profile("flaky").faults
    assert load('[backend]\nkind = "chromium"\n').backend.kind == "chromium"
    for bad, where in (
        ("[cdp]\nbogus = 1\n", "cdp.bogus"),
        ('[cdp.handshake]\ndist = "fixed"\n', "cdp.handshake.value_s"),
        ('[backend]\nkind = "firefox"\n', "backend.kind"),
        ('[backend]\nextra_args = ["--remote-debugging-address=0.0.0.0"]\n', "backend.extra_args"),
        ("[backend]\nlaunch_timeout_s = 0\n", "backend.launch_timeout_s"),
        ("[faults.cdp]\nrate_unknown_status = 0.5\n", "faults.cdp.rate_unknown_status"),
    ):
        with pytest.raises(ProfileError, match=re.escape(where)):
            load(bad)


def test_runtime_fault_table_takes_cdp(sim, faults):
    table = faults.set_faults({"cdp": {"rate_slow": 0.5, "slow_s": 1.0}})
    assert table["cdp"]["rate_slow"] == 0.5
    response = httpx.put(sim.url + "/_sim/faults", json={"cdpx": {}}, timeout=10)
    assert response.status_code == 400 and "cdp" in response.text
