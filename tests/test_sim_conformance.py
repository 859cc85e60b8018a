"""Conformance: the official SDK drives the simulator; every body validates against its models."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anchorbrowser
import httpx
import orjson
import pydantic
import pytest
from anchorbrowser.types import models
from conftest import assert_error

from bench.simulator.deviations import DEVIATIONS, tolerated_values
from bench.simulator.process import SimulatorProcess


@pytest.fixture(scope="module")
def sdk(simulator: SimulatorProcess, api_key: str) -> Iterator[anchorbrowser.Anchorbrowser]:
    # No retries: a retried request would hide exactly what these tests look at.
    with anchorbrowser.Anchorbrowser(
        api_key=api_key, base_url=simulator.url, max_retries=0
    ) as client:
        yield client
        client.sessions.delete_all_sessions()


def tolerate(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` without the out-of-spec values that deviations.py documents.

    Only fields the spec lets be absent carry such values, so dropping one leaves a
    body the strict model must accept; any other surprise still fails validation.
    """
    out = copy.deepcopy(body)
    for deviation in DEVIATIONS:
        if not deviation.path or not deviation.values:
            continue
        *parents, last = deviation.path.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(last) in tolerated_values(deviation.path):
            del node[last]
    return out


def validate(model: type[pydantic.BaseModel], response: httpx.Response) -> pydantic.BaseModel:
    """Strict validation (JSON mode) of a raw body, after tolerating documented deviations."""
    assert response.headers["content-type"].startswith("application/json")
    body = tolerate(orjson.loads(response.content))
    return model.model_validate_json(orjson.dumps(body), strict=True)


def poll_sdk(sdk: anchorbrowser.Anchorbrowser, request_id: str) -> Any:
    end = time.monotonic() + 20
    while True:
        status = sdk.sessions.get_async_session_status(request_id)
        if status.data.status not in ("pending", "processing"):
            return status
        assert time.monotonic() < end, f"{request_id} never left {status.data.status}"
        time.sleep(0.005)


def test_sdk_lifecycle(sdk: anchorbrowser.Anchorbrowser):
    tag = f"sdk-{uuid.uuid4().hex[:8]}"
    created = sdk.sessions.create_session_async(
        session={
            "tags": [tag, "conformance"],
            "timeout": {"idle_timeout": 5, "max_duration": 25},
            "recording": {"active": True},
        },
        browser={"adblock": {"active": True}},
    )
    assert isinstance(created, models.AsyncSessionCreateResponseSchema)
    assert created.data.status == "pending" and created.data.session_id is None
    request_id = str(created.data.request_id)

    ready = poll_sdk(sdk, request_id)
    assert ready.data.status == "ready"
    assert ready.data.progress.current_phase == "ready"
    session_id = str(ready.data.session.session_id)
    assert ready.data.session.cdp_url and ready.data.session.live_view_url

    got = sdk.sessions.get_session(session_id)
    assert got.data.session_id == session_id

    listed = sdk.sessions.get_all_sessions_status(tags=f"{tag},conformance")
    assert [item.session_id for item in listed.data.items] == [session_id]
    assert listed.data.count == 1
    assert sdk.sessions.get_all_sessions_status(tags=f"{tag},other").data.count == 0

    billing = sdk.billing.get_billing()
    assert billing.data.max_concurrent_browsers == 50
    assert billing.data.credits_used >= 1

    assert sdk.sessions.delete_session(session_id).data.status == "success"
    assert sdk.sessions.get_all_sessions_status(tags=tag).data.count == 0
    assert sdk.sessions.delete_all_sessions().data.status == "success"


def test_sdk_errors(sdk: anchorbrowser.Anchorbrowser):
    with pytest.raises(anchorbrowser.NotFoundError):
        sdk.sessions.get_async_session_status(str(uuid.uuid4()))
    with pytest.raises(anchorbrowser.AuthenticationError):  # the real API's 401
        sdk.sessions.delete_session(str(uuid.uuid4()))
    with pytest.raises(anchorbrowser.BadRequestError):
        sdk.sessions.create_session_async(session={"tags": "not-a-list"})  # type: ignore[typeddict-item]


def test_raw_bodies_validate_strictly(api: httpx.Client, poll_ready):
    tag = f"raw-{uuid.uuid4().hex[:8]}"
    created = api.post("/v1/sessions/async", json={"session": {"tags": [tag]}})
    data = validate(models.AsyncSessionCreateResponseSchema, created).data
    request_id = str(data.request_id)

    first = api.get(f"/v1/sessions/async/{request_id}/status")
    validate(models.AsyncSessionStatusResponseSchema, first)
    poll_ready(request_id)
    ready = api.get(f"/v1/sessions/async/{request_id}/status")
    status = validate(models.AsyncSessionStatusResponseSchema, ready).data
    assert status.status == "ready" and status.session is not None
    session_id = str(status.session.session_id)

    validate(models.SessionsGetSessionResponse, api.get(f"/v1/sessions/{session_id}"))
    listed = api.get("/v1/sessions/all/status", params={"tags": tag})
    assert validate(models.SessionListResponse, listed).data.count == 1
    validate(models.BillingInfoResponse, api.get("/v1/billing"))
    validate(models.SuccessResponse, api.delete(f"/v1/sessions/{session_id}"))
    # An ended session: still known, still a valid body.
    validate(models.SessionsGetSessionResponse, api.get(f"/v1/sessions/{session_id}"))
    after = api.get(f"/v1/sessions/async/{request_id}/status")
    validate(models.AsyncSessionStatusResponseSchema, after)
    validate(models.SuccessResponse, api.delete("/v1/sessions/all"))


def test_documented_deviations_are_real(api: httpx.Client, poll_ready):
    # Each tolerated value must really be outside the spec, or it should not be listed.
    request_id = api.post("/v1/sessions/async", json={}).json()["data"]["request_id"]
    poll_ready(request_id)
    body = api.get(f"/v1/sessions/async/{request_id}/status").json()
    assert body["data"]["session"]["status"] in tolerated_values("data.session.status")
    with pytest.raises(pydantic.ValidationError):
        models.AsyncSessionStatusResponseSchema.model_validate_json(orjson.dumps(body), strict=True)
    for deviation in DEVIATIONS:
        assert deviation.what and deviation.why and deviation.endpoint
    assert len({d.key for d in DEVIATIONS}) == len(DEVIATIONS)
    api.delete("/v1/sessions/all")


def test_error_bodies_validate(api: httpx.Client, simulator: SimulatorProcess, no_faults):
    responses = {
        401: httpx.get(simulator.url + "/v1/billing"),
        404: api.get(f"/v1/sessions/async/{uuid.uuid4()}/status"),
        400: api.post("/v1/sessions/async", content=b"{"),
        405: api.patch("/v1/billing"),
        413: api.post("/v1/sessions/async", content=b" " * (1024 * 1024 + 1)),
    }
    no_faults.set_faults({"billing": {"rate_429": 1.0}})
    responses[429] = api.get("/v1/billing")
    no_faults.set_faults({"billing": {"rate_5xx": 1.0}})
    server_error = api.get("/v1/billing")
    responses[server_error.status_code] = server_error
    for status, response in responses.items():
        assert_error(response, status)
        error = models.ErrorResponse.model_validate_json(response.content, strict=True)
        assert error.error is not None and error.error.code == status
    assert server_error.status_code in (500, 502, 503)
    assert responses[429].headers["retry-after"] == "0.02"  # fast profile: 1 s x 0.02
    assert responses[429].headers["ratelimit"].startswith("limit=")
    assert "ratelimit-policy" in responses[429].headers
