"""The simulator's HTTP behaviour on loopback: lifecycle, admin endpoints, faults, mixed load."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psutil
import pytest
from conftest import assert_error

from bench.simulator.process import SimulatorError, SimulatorProcess


def create(api: httpx.Client, **session: Any) -> str:
    response = api.post("/v1/sessions/async", json={"session": session})
    assert response.status_code == 200, response.text
    return response.json()["data"]["request_id"]


def test_lifecycle_and_truth(api, simulator, poll_ready):
    tag = f"life-{uuid.uuid4().hex[:8]}"
    polls_before = simulator.counters()["polls"]
    request_id = create(api, tags=[tag])
    data = poll_ready(request_id)
    assert data["status"] == "ready"
    session_id = data["session"]["session_id"]
    assert data["session"]["status"] == "running"

    session = api.get(f"/v1/sessions/{session_id}").json()["data"]
    assert session["session_id"] == session_id
    assert session["configuration"]["session"]["tags"] == [tag]
    items = api.get("/v1/sessions/all/status", params={"tags": tag}).json()["data"]["items"]
    assert [i["session_id"] for i in items] == [session_id]

    assert api.delete(f"/v1/sessions/{session_id}").json() == {"data": {"status": "success"}}
    assert api.get(f"/v1/sessions/{session_id}").json()["data"]["status"] == "ended"
    assert api.delete(f"/v1/sessions/{session_id}").status_code == 200  # idempotent
    assert api.get("/v1/sessions/all/status", params={"tags": tag}).json()["data"]["count"] == 0

    truth = simulator.truth()
    assert set(truth) >= {"requests", "counters"}
    mine = next(r for r in truth["requests"] if r["request_id"] == request_id)
    assert mine["session_id"] == session_id
    statuses = [t["status"] for t in mine["transitions"]]
    assert statuses[-2:] == ["ready", "completed"]  # ending the session completes the request
    assert mine["ended"]["by"] == "delete"
    assert simulator.counters()["polls"] > polls_before
    one = httpx.get(f"{simulator.url}/_sim/truth/{request_id}").json()
    assert one["request_id"] == request_id
    assert_error(httpx.get(f"{simulator.url}/_sim/truth/{uuid.uuid4()}"), 404)


def test_delete_all_ends_every_session(api, poll_ready):
    tag = f"all-{uuid.uuid4().hex[:8]}"
    ids = [create(api, tags=[tag]) for _ in range(3)]
    for request_id in ids:
        assert poll_ready(request_id)["status"] == "ready"
    assert api.get("/v1/sessions/all/status", params={"tags": tag}).json()["data"]["count"] == 3
    assert api.delete("/v1/sessions/all").json() == {"data": {"status": "success"}}
    assert api.get("/v1/sessions/all/status", params={"tags": tag}).json()["data"]["count"] == 0


def test_list_filters(api, poll_ready):
    tag = f"filt-{uuid.uuid4().hex[:8]}"
    poll_ready(create(api, tags=[tag, "second"]))
    url = "/v1/sessions/all/status"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert api.get(url, params={"tags": f"{tag},second"}).json()["data"]["count"] == 1
    assert api.get(url, params={"tags": f"{tag}, second ,"}).json()["data"]["count"] == 1
    assert api.get(url, params={"tags": tag, "created_from": future}).json()["data"]["count"] == 0
    assert api.get(url, params={"tags": tag, "created_from": past}).json()["data"]["count"] == 1
    assert api.get(url, params={"tags": tag, "created_to": past}).json()["data"]["count"] == 0
    assert api.get(url, params={"tags": tag, "playground": "true"}).json()["data"]["count"] == 0
    assert api.get(url, params={"tags": tag, "proxy": "false"}).json()["data"]["count"] == 1
    api.delete("/v1/sessions/all")


def test_billing_counts_credits(api):
    before = api.get("/v1/billing").json()["data"]
    create(api)
    after = api.get("/v1/billing").json()["data"]
    assert after["credits_used"] == before["credits_used"] + 1
    assert after["max_concurrent_browsers"] == 50
    api.delete("/v1/sessions/all")


def test_fault_table_roundtrip(no_faults):
    table = no_faults.set_faults({"status": {"rate_slow": 0.5, "slow_s": 2}})
    assert table["status"]["rate_slow"] == 0.5 and table["status"]["slow_s"] == 2.0
    assert httpx.get(no_faults.url + "/_sim/faults").json() == table
    assert no_faults.set_faults({}) == {}


def fault_delta(sim: SimulatorProcess, before: dict[str, Any], kind: str) -> int:
    return sim.counters()["faults"].get(kind, 0) - before["faults"].get(kind, 0)


def test_injected_429(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"create": {"rate_429": 1.0, "retry_after_s": 2.5}})
    response = api.post("/v1/sessions/async", json={})
    assert_error(response, 429)
    assert response.headers["retry-after"] == "0.05"  # 2.5 s x time scale 0.02, decimal
    assert response.headers["ratelimit"] == "limit=50, remaining=0, reset=0.05"
    assert response.headers["ratelimit-policy"] == "50;w=0.05"
    assert fault_delta(no_faults, before, "429") == 1
    assert no_faults.counters()["creates_accepted"] == before["creates_accepted"]  # no side effect


def test_injected_5xx(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"billing": {"rate_5xx": 1.0}})
    statuses = {api.get("/v1/billing").status_code for _ in range(30)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert fault_delta(no_faults, before, "5xx") == 30


def test_injected_malformed_body(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"billing": {"rate_malformed": 1.0}})
    response = api.get("/v1/billing")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    assert fault_delta(no_faults, before, "malformed") == 1


def test_injected_dropped_connection(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"list": {"rate_drop": 1.0}})
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/v1/sessions/all/status")
    assert fault_delta(no_faults, before, "drop") == 1
    no_faults.set_faults({})
    assert api.get("/v1/sessions/all/status").status_code == 200  # the client reconnects


def test_injected_slow_answer_is_a_normal_answer(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"billing": {"rate_slow": 1.0, "slow_s": 0.5}})
    response = api.get("/v1/billing")
    assert response.status_code == 200 and "credits" in response.json()["data"]
    assert fault_delta(no_faults, before, "slow") == 1


@pytest.fixture(scope="module")
def real_time_sim(api_key: str) -> Iterator[SimulatorProcess]:
    with SimulatorProcess("default", seed=7, api_key=api_key) as sim:
        yield sim


def test_retry_after_is_integer_at_real_time(real_time_sim, api_key):
    real_time_sim.set_faults({"status": {"rate_429": 1.0, "retry_after_s": 1.2}})
    response = httpx.get(
        f"{real_time_sim.url}/v1/sessions/async/{uuid.uuid4()}/status",
        headers={"anchor-api-key": api_key},
    )
    assert_error(response, 429)
    assert response.headers["retry-after"] == "2"  # whole seconds, rounded up


# ---------------------------------------------------------------------- mixed load


class LoadTally:
    """What a client saw, to be compared with what the simulator says it injected."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.dropped = 0
        self.malformed = 0
        self.bad_error_bodies: list[str] = []

    async def call(self, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError:
            self.dropped += 1
            return None
        self.statuses[response.status_code] += 1
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            self.malformed += 1
            return None
        if response.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            if not (isinstance(error, dict) and error.get("code") == response.status_code):
                self.bad_error_bodies.append(response.text)
            return None
        return body["data"]


async def journey_loop(client: httpx.AsyncClient, tally: LoadTally, until: float) -> None:
    while time.monotonic() < until:
        created = await tally.call(client, "POST", "/v1/sessions/async", json={})
        if created is None:
            await asyncio.sleep(0.01)  # back off a little after a refusal, like a client would
            continue
        request_id = created["request_id"]
        data: dict[str, Any] | None = None
        while time.monotonic() < until + 5:
            data = await tally.call(client, "GET", f"/v1/sessions/async/{request_id}/status")
            if data is not None and data["status"] not in ("pending", "processing"):
                break
            await asyncio.sleep(0.01)
        if data is not None and data.get("session"):
            await tally.call(client, "DELETE", f"/v1/sessions/{data['session']['session_id']}")
        await tally.call(client, "GET", "/v1/sessions/all/status")


async def mixed_load(url: str, api_key: str, seconds: float, workers: int) -> LoadTally:
    tally = LoadTally()
    until = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=url, headers={"anchor-api-key": api_key}, timeout=30
    ) as client:
        await asyncio.gather(*(journey_loop(client, tally, until) for _ in range(workers)))
    return tally


@pytest.mark.slow
def test_mixed_load_with_faults_has_no_server_errors(api_key):
    with SimulatorProcess("flaky", time_scale=0.02, seed=99, api_key=api_key) as sim:
        tally = asyncio.run(mixed_load(sim.url, api_key, seconds=3.0, workers=8))
        counters = sim.counters()
        faults = counters["faults"]
        rejected = counters["creates_rejected"]

        assert counters["server_errors"] == 0
        assert not tally.bad_error_bodies
        assert sum(tally.statuses.values()) > 100  # the load did happen
        # Everything the client saw go wrong is accounted for by injected faults or by
        # the model's own (documented) rejections, and nothing else.
        assert tally.dropped == faults.get("drop", 0)
        assert tally.malformed == faults.get("malformed", 0)
        server_errors_seen = sum(n for s, n in tally.statuses.items() if s >= 500)
        assert server_errors_seen == faults.get("5xx", 0) + rejected.get("500", 0)
        assert tally.statuses[429] == faults.get("429", 0) + rejected.get("429", 0)
        assert tally.statuses[400] == rejected.get("400", 0)
        assert tally.statuses[401] == 0
        assert faults.get("drop", 0) > 0 and faults.get("5xx", 0) > 0

        # Still healthy: alive, answering, not a zombie.
        assert sim.alive()
        process = psutil.Process(sim.pid)
        assert process.status() != psutil.STATUS_ZOMBIE
        sim.set_faults({})
        billing = httpx.get(sim.url + "/v1/billing", headers={"anchor-api-key": api_key})
        assert billing.status_code == 200
        assert sim.stop() == 0


def test_model_rate_limit_429_carries_bucket_headers(tmp_path, api_key):
    profile = tmp_path / "tight.toml"
    profile.write_text(
        'extends = "default"\n[rate_limit]\ncreates_per_s = 0.5\nburst = 2\n'
    )
    with SimulatorProcess(str(profile), seed=3, api_key=api_key) as sim:
        headers = {"anchor-api-key": api_key}
        url = sim.url + "/v1/sessions/async"
        statuses = [httpx.post(url, json={}, headers=headers) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        refused = statuses[-1]
        assert_error(refused, 429)
        assert refused.headers["retry-after"] == "2"  # a token every 2 s, integer at scale 1
        assert refused.headers["ratelimit"].startswith("limit=2, remaining=0, reset=")
        assert refused.headers["ratelimit-policy"] == "2;w=4"
        assert sim.counters()["creates_rejected"] == {"429": 1}


# ---------------------------------------------------------------------- status anomalies


def answers_until_terminal(api: httpx.Client, request_id: str) -> list[tuple[str, str, bool]]:
    """(status, phase, has session) of every status answer until a terminal one (bounded)."""
    seen: list[tuple[str, str, bool]] = []
    for _ in range(5000):  # a fast-profile request is terminal within ~0.1 s: far below this
        data = api.get(f"/v1/sessions/async/{request_id}/status").json()["data"]
        seen.append((data["status"], data["progress"]["current_phase"], "session" in data))
        if data["status"] in ("ready", "failed", "cancelled", "completed"):
            return seen
    raise AssertionError(f"request {request_id} never terminal: {seen[-3:]}")


def test_status_anomalies_are_refused_off_the_status_endpoint(no_faults):
    for table in (
        {"create": {"rate_backwards": 0.5}},
        {"status": {"rate_unknown_status": 0.6, "rate_completed": 0.6}},
        {"status": {"rate_backwards": 1.5}},
    ):
        with pytest.raises(SimulatorError, match="400"):
            no_faults.set_faults(table)


def test_unknown_status_while_in_flight_then_the_truth(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"status": {"rate_unknown_status": 1.0}})
    request_id = create(api)
    seen = answers_until_terminal(api, request_id)
    # Every in-flight answer is odd; the terminal one is true, so clean-up can still work.
    assert {s for s, _, _ in seen[:-1]} == {"initializing"}
    assert seen[-1][0] in ("ready", "failed")
    counters = no_faults.counters()
    assert fault_delta(no_faults, before, "unknown_status") == 1  # once per request
    assert counters["faults_by_endpoint"]["status"]["unknown_status"] >= 1


def test_backwards_once_after_a_later_phase(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"status": {"rate_backwards": 1.0}})
    request_id = create(api)
    seen = answers_until_terminal(api, request_id)
    rank = {"queued": 0, "provisioning": 1, "configuring": 2}
    ranks = [3 if s == "ready" else rank[p] for s, p, _ in seen]
    drops = [i for i in range(1, len(ranks)) if ranks[i] < max(ranks[:i])]
    assert len(drops) == 1, seen
    assert not seen[drops[0]][2]  # the backwards answer shows no session
    assert fault_delta(no_faults, before, "backwards") == 1


def test_completed_without_ever_ready_really_ends_the_request(api, no_faults):
    before = no_faults.counters()
    no_faults.set_faults({"status": {"rate_completed": 1.0}})
    request_id = create(api)
    data = api.get(f"/v1/sessions/async/{request_id}/status").json()["data"]
    assert (data["status"], "session" in data) == ("completed", False)
    no_faults.set_faults({})  # the model, not the fault layer, now holds the state
    data = api.get(f"/v1/sessions/async/{request_id}/status").json()["data"]
    assert data["status"] == "completed"
    truth = httpx.get(f"{no_faults.url}/_sim/truth/{request_id}").json()
    assert truth["outcome"] == "completed_before_ready" and truth["session_id"] is None
    after = no_faults.counters()
    assert fault_delta(no_faults, before, "completed") == 1
    assert after["completed_before_ready"] == before["completed_before_ready"] + 1


def test_faults_are_counted_per_endpoint(api, no_faults):
    before = no_faults.counters()["faults_by_endpoint"].get("billing", {}).get("5xx", 0)
    no_faults.set_faults({"billing": {"rate_5xx": 1.0}})
    for _ in range(3):
        api.get("/v1/billing")
    assert no_faults.counters()["faults_by_endpoint"]["billing"]["5xx"] == before + 3
