"""Conformance: the official SDK drives the simulator; every body validates against its models.

Every dialect too: each bundled profile's answers validate once exactly the deviations
that deviations_for(profile) lists are tolerated, and each listed one is really served.
"""

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
from sim_inprocess import running

from bench.simulator.deviations import (
    CREATE,
    DELETE,
    DEVIATIONS,
    LIST,
    STATUS,
    STATUS_CODE,
    Deviation,
    deviations_for,
    tolerated_values,
)
from bench.simulator.process import SimulatorProcess
from bench.simulator.profile import available_profiles, load_profile


@pytest.fixture(scope="module")
def sdk(simulator: SimulatorProcess, api_key: str) -> Iterator[anchorbrowser.Anchorbrowser]:
    # No retries: a retried request would hide exactly what these tests look at.
    with anchorbrowser.Anchorbrowser(
        api_key=api_key, base_url=simulator.url, max_retries=0
    ) as client:
        yield client
        client.sessions.delete_all_sessions()


def tolerate_noting(
    body: dict[str, Any],
    deviations: tuple[Deviation, ...] = DEVIATIONS,
    endpoint: str | None = None,
) -> tuple[dict[str, Any], set[str]]:
    """A copy of `body` with the deviations' out-of-spec values tolerated, and their keys.

    A tolerated value (or a missing field the spec requires) is replaced by the
    deviation's in-spec stand-in, or dropped when the field is optional; any other
    surprise still fails validation.  With `endpoint`, only that endpoint's deviations.
    """
    out = copy.deepcopy(body)
    applied: set[str] = set()
    for deviation in deviations:
        if deviation.path in ("", STATUS_CODE):
            continue
        if endpoint is not None and deviation.endpoint not in (endpoint, "any"):
            continue
        *parents, last = deviation.path.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if (deviation.absent and last not in node) or (
            deviation.values and node.get(last) in deviation.values
        ):
            applied.add(deviation.key)
            if deviation.stand_in is None:
                node.pop(last, None)
            else:
                node[last] = copy.deepcopy(deviation.stand_in)
    return out, applied


def tolerate(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the default profile's documented deviations tolerated."""
    return tolerate_noting(body)[0]


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


# ---------------------------------------------------------------------- every dialect

GET_SESSION, DELETE_ALL, BILLING = (
    "GET /v1/sessions/{session_id}", "DELETE /v1/sessions/all", "GET /v1/billing"
)
# The status codes the spec lists per endpoint (anchor-openapi.yml).
SPEC_CODES = {
    CREATE: {200, 400, 402, 403, 429},
    STATUS: {200, 401, 404, 500},
    DELETE: {200, 401, 500},
    LIST: {200, 401, 500},
    GET_SESSION: {200, 404, 500},
    DELETE_ALL: {200},
    BILLING: {200, 401, 500},
}
MODELS: dict[str, type[pydantic.BaseModel]] = {
    CREATE: models.AsyncSessionCreateResponseSchema,
    STATUS: models.AsyncSessionStatusResponseSchema,
    DELETE: models.SuccessResponse,
    LIST: models.SessionListResponse,
    GET_SESSION: models.SessionsGetSessionResponse,
    DELETE_ALL: models.SuccessResponse,
    BILLING: models.BillingInfoResponse,
}
DIALECT_PROFILES = [name for name in available_profiles() if name.startswith("dialect-")]


class DialectChecker:
    """Validates every answer against the spec, tolerating only the profile's deviations."""

    def __init__(self, sim: Any, deviations: tuple[Deviation, ...]) -> None:
        self.sim = sim
        self.deviations = deviations
        self.observed: set[str] = set()
        self.answers = 0

    def _code_deviation(self, endpoint: str, code: int) -> str:
        for d in self.deviations:
            if d.path == STATUS_CODE and d.endpoint in (endpoint, "any") and str(code) in d.values:
                return d.key
        raise AssertionError(f"{endpoint} answered {code}: outside the spec, no deviation")

    def check(self, endpoint: str, response: httpx.Response) -> dict[str, Any] | None:
        self.answers += 1
        code = response.status_code
        if code not in SPEC_CODES[endpoint]:
            self.observed.add(self._code_deviation(endpoint, code))
        if 300 <= code < 400 or code == 204:
            assert response.content == b""
            return None
        assert response.headers["content-type"].startswith("application/json")
        body = orjson.loads(response.content)
        model = MODELS[endpoint] if code < 400 else models.ErrorResponse
        tolerated, applied = tolerate_noting(body, self.deviations, endpoint)
        model.model_validate_json(orjson.dumps(tolerated), strict=True)
        if applied:
            # What was tolerated is really outside the spec: the raw body fails.
            with pytest.raises(pydantic.ValidationError):
                model.model_validate_json(response.content, strict=True)
            self.observed |= applied
        return body

    def call(self, endpoint: str, method: str, url: str, **kw: Any) -> httpx.Response:
        """One request, following same-origin redirects and retrying after other-origin ones."""
        for _ in range(50):
            response = self.sim.client.request(method, url, **kw)
            body = self.check(endpoint, response)
            del body
            if not 300 <= response.status_code < 400:
                return response
            location = response.headers["location"]
            if location.startswith(self.sim.url):
                url = location.removeprefix(self.sim.url)
                if response.status_code in (301, 302, 303) and method == "POST":
                    # What clients do: the create becomes GET /v1/sessions/async, which
                    # the router reads as GET /v1/sessions/{session_id} ("async").
                    method, kw, endpoint = "GET", {}, GET_SESSION
        raise AssertionError(f"{method} {url}: redirected 50 times")

    def journey(self, tag: str) -> None:
        call = self.call
        body = {"session": {"tags": [tag]}}
        created = call(CREATE, "POST", "/v1/sessions/async", json=body)
        while created.request.method != "POST":  # a 301/302/303 turned the create into a GET
            created = call(CREATE, "POST", "/v1/sessions/async", json=body)
        request_id = created.json()["data"]["request_id"]
        status_url = f"/v1/sessions/async/{request_id}/status"
        for _ in range(5000):
            data = call(STATUS, "GET", status_url).json()["data"]
            if data["status"] == "ready" and "session" in data:
                break
            self.sim.clock.advance(0.001)
        session_id = data["session"]["session_id"]
        call(GET_SESSION, "GET", f"/v1/sessions/{session_id}")
        first = call(LIST, "GET", "/v1/sessions/all/status", params={"tags": tag}).json()["data"]
        if first.get("next_cursor"):
            call(LIST, "GET", "/v1/sessions/all/status", params={"cursor": first["next_cursor"]})
        call(LIST, "GET", "/v1/sessions/all/status", params={"tags": tag, "page": 2})
        call(BILLING, "GET", "/v1/billing")
        call(DELETE, "DELETE", f"/v1/sessions/{session_id}")
        call(DELETE, "DELETE", f"/v1/sessions/{session_id}")
        call(DELETE, "DELETE", f"/v1/sessions/{uuid.uuid4()}")
        call(STATUS, "GET", status_url)
        call(GET_SESSION, "GET", f"/v1/sessions/{session_id}")
        call(LIST, "GET", "/v1/sessions/all/status", params={"tags": tag})


@pytest.mark.parametrize("name", ["fast", *DIALECT_PROFILES])
def test_every_dialect_serves_valid_bodies_and_exactly_its_deviations(name):
    profile = load_profile(name, seed=7)
    deviations = deviations_for(profile)
    with running(profile) as sim:
        sim.set_faults({})  # transient faults are not a dialect; the dialect stays
        checker = DialectChecker(sim, deviations)
        for n in range(3):
            checker.journey(f"conf-{n}")
        checker.call(DELETE_ALL, "DELETE", "/v1/sessions/all")
    # Those a body or a status code can show (get-session-tags only leaves an optional
    # field out, which no validation can see).
    servable = {d.key for d in deviations if d.path == STATUS_CODE or d.values or d.absent}
    assert checker.observed == servable, f"{name}: {checker.answers} answers checked"
    # The behavioural ones (no body or code to check) follow their knobs exactly.
    behaviour = {d.key for d in deviations if d.path == "" and d.key.startswith("list-")}
    dialect = profile.dialect
    expected = {"list-paged"} if dialect.list_paging != "none" else set()
    expected |= {"list-tag-filter-dropped"} if dialect.ignore_tag_filter else set()
    assert behaviour == expected | {"list-filters-ignored"}


def test_deviations_follow_the_dialect():
    assert deviations_for(load_profile("default")) == DEVIATIONS
    assert deviations_for(load_profile("fast")) == DEVIATIONS
    spec_words = {d.key: d for d in deviations_for(load_profile("dialect-spec-words"))}
    assert spec_words["session-status-words"].values == ("running",)  # completed is in the enum
    keys = {d.key for d in deviations_for(load_profile("dialect-delete-401"))}
    assert keys == {d.key for d in DEVIATIONS}  # 401 is the spec's own answer
    mix = {d.key for d in deviations_for(load_profile("dialect-mix"))}
    assert mix - {d.key for d in DEVIATIONS} == {
        "status-without-progress",
        "unknown-phase-words",
        "create-status-code",
        "delete-status-codes",
        "redirects",
        "list-paged",
        "list-tag-filter-dropped",
    }
    for name in DIALECT_PROFILES:
        listed = deviations_for(load_profile(name))
        assert len({d.key for d in listed}) == len(listed)
        assert all(d.what and d.why and d.endpoint for d in listed)
