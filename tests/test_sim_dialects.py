"""Simulator dialects: every [dialect] knob serves what it says, and truth / counters record it.

Most tests run the real app on loopback in this process with a clock the test moves
(tests/sim_inprocess.py), so time-dependent answers are checked at exact instants; a few
run `bench simulate` as a process to cover what only the launcher does (the second
listener, bundled profiles end to end).  The model-level tests at the top drive the
pure model with exact, binary-representable durations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import math
import random
import time
from collections import Counter
from types import MappingProxyType
from typing import Any

import httpx
import orjson
import pytest
from conftest import assert_error
from sim_inprocess import HEADERS, running

from bench.simulator import bodies
from bench.simulator.dialect import Dialect, encode_cursor
from bench.simulator.distributions import Fixed
from bench.simulator.model import Accepted, EndResult, SessionModel, SessionView
from bench.simulator.process import SimulatorProcess
from bench.simulator.profile import (
    CapacityParams,
    DialectParams,
    EndpointFaults,
    PhaseParams,
    Profile,
    load_profile,
    profile_with_faults,
)
from bench.simulator.truth import true_durations
from bench.simulator.validate import InputError

REDIRECTS = (301, 302, 303, 307, 308)


def fast_with(**dialect: Any) -> Profile:
    """The fast profile with these [dialect] keys (the rest today's answers)."""
    return dataclasses.replace(
        load_profile("fast"), dialect=dataclasses.replace(DialectParams(), **dialect)
    )


# ====================================================================== the model, exact

START, WALL = 100.0, 1_750_000_000.0
DISPATCH, PROV, CONF = 0.125, 1.0, 0.25
READY = DISPATCH + PROV + CONF


def exact_model(capacity: int = 10, seed: int = 1, **dialect: Any) -> SessionModel:
    profile = Profile(
        name="exact",
        time_scale=1.0,
        seed=None,
        faults={},
        capacity=CapacityParams(max_concurrent_browsers=capacity, max_queue=100),
        phases=PhaseParams(
            dispatch=Fixed(DISPATCH),
            provisioning=Fixed(PROV),
            configuring=Fixed(CONF),
            features=MappingProxyType({}),
        ),
        dialect=dataclasses.replace(DialectParams(), **dialect),
    )
    return SessionModel(profile, rng=random.Random(seed), start_mono=START, start_wall=WALL)


def accept(model: SessionModel, now: float, tags: list[str] | None = None) -> str:
    result = model.create({"session": {"tags": tags or []}}, now)
    assert isinstance(result, Accepted)
    return result.request_id


def view_at(model: SessionModel, request_id: str, t: float) -> tuple[str, str, bool]:
    view = model.request(request_id, START + t)
    assert view is not None
    return view.status, view.phase, view.session is not None


def test_model_phase_first_status_decides_the_ready_instant():
    lead = 0.5
    model = exact_model(phase_ready_lead_s=lead)
    rid = accept(model, START)
    assert view_at(model, rid, READY - 1e-9) == ("processing", "configuring", False)
    assert view_at(model, rid, READY) == ("processing", "ready", False)
    assert view_at(model, rid, READY + lead - 1e-9) == ("processing", "ready", False)
    assert view_at(model, rid, READY + lead) == ("ready", "ready", True)
    truth = model.request_truth(rid, START + 10)
    assert truth is not None
    assert [(t["status"], t["phase"], t["t"]) for t in truth["transitions"]][-2:] == [
        ("processing", "ready", READY),
        ("ready", "ready", READY + lead),
    ]
    assert truth["ready_t"] == READY + lead  # the status's instant, not the phase's
    assert true_durations(truth) == {
        "ready": READY + lead,
        "phase_ready_lead": lead,
        "queued": DISPATCH,
        "provisioning": PROV,
        "configuring": CONF,
    }


def test_model_without_phase_first_has_no_lead():
    model = exact_model()
    rid = accept(model, START)
    truth = model.request_truth(rid, START + 10)
    assert truth is not None and "phase_ready_lead" not in true_durations(truth)


def test_model_session_row_appears_after_the_lag():
    lag = 0.25
    model = exact_model(session_lag_s=lag)
    rid = accept(model, START, ["t"])
    assert view_at(model, rid, READY) == ("ready", "ready", False)
    # The row is not there yet: neither listed nor found by id.
    assert model.list_sessions(["t"], START + READY) == []
    truth = model.request_truth(rid, START + READY)
    assert truth is not None and truth["session_shown_t"] is None
    session_id = truth["session_id"]
    assert model.get_session(session_id, START + READY + lag - 1e-9) is None
    assert view_at(model, rid, READY + lag) == ("ready", "ready", True)
    assert [v.session_id for v in model.list_sessions(["t"], START + READY + lag)] == [session_id]
    assert model.get_session(session_id, START + READY + lag) is not None
    truth = model.request_truth(rid, START + 10)
    assert truth is not None
    assert (truth["ready_t"], truth["session_shown_t"]) == (READY, READY + lag)
    # Showing the session is no status transition.
    assert [t["status"] for t in truth["transitions"]].count("ready") == 1


def test_model_session_ended_during_the_lag_shows_ended():
    model = exact_model(session_lag_s=1.0, ended_session_status="gone")
    rid = accept(model, START)
    model.end_all(START + READY + 0.5)
    view = model.request(rid, START + READY + 0.5)
    assert view is not None and view.status == "completed"
    assert view.session is not None and view.session.status == "gone"
    truth = model.request_truth(rid, START + 10)
    assert truth is not None and truth["session_shown_t"] == READY + 0.5


def test_model_session_words_and_ended_sessions_listed():
    model = exact_model(live_session_status="active", ended_session_status="terminated")
    first, second = accept(model, START, ["w"]), accept(model, START, ["w"])
    now = START + READY
    views = model.list_sessions(["w"], now)
    assert [v.status for v in views] == ["active", "active"]
    assert [v.seq for v in views] == [1, 2]
    first_id = views[0].session_id
    assert model.end_session(first_id, now) is EndResult.ENDED
    assert [v.status for v in model.list_sessions(["w"], now)] == ["active"]
    listed = model.list_sessions(["w"], now, include_ended=True)
    assert (listed[0].session_id, listed[0].status) == (first_id, "terminated")
    session = model.get_session(first_id, now)
    assert session is not None and session.status == "terminated"
    ended_view = model.request(first, now)
    assert ended_view is not None and ended_view.session is not None
    assert ended_view.session.status == "terminated"
    assert model.request(second, now) is not None


def test_model_foreign_sessions_are_the_keys_but_not_the_runs():
    model = exact_model(capacity=1, foreign_sessions=2, foreign_tags=("other",))
    foreign = [v.session_id for v in model.list_sessions(["other"], START)]
    assert len(foreign) == 2
    # Outside the capacity: the run's one slot is still free.
    rid = accept(model, START, ["mine"])
    assert view_at(model, rid, READY) == ("ready", "ready", True)
    counters = model.counters(START + READY)
    assert counters["live_sessions"] == 1  # the run's own only
    assert counters["foreign"] == {"sessions": 2, "live": 2, "ended": 0, "ended_by": {}}
    assert counters["sessions_ready"] == 1 and counters["creates_accepted"] == 1
    # They never expire (no idle timeout), whatever the time.
    model.advance(START + 1e6)
    assert model.counters(START + 1e6)["foreign"]["live"] == 2
    now = START + 1e6
    assert model.end_session(foreign[0], now) is EndResult.ENDED
    assert model.end_session(foreign[0], now) is EndResult.ALREADY_ENDED
    model.end_all(now)
    counters = model.counters(now)
    assert counters["foreign"] == {
        "sessions": 2, "live": 0, "ended": 2, "ended_by": {"delete": 1, "delete_all": 1}
    }  # fmt: skip
    assert counters["sessions_ended"] == 1  # the run's session, expired or ended: not foreign
    truth = model.truth(now)
    assert [f["ended"]["by"] for f in truth["foreign_sessions"]] == ["delete", "delete_all"]
    assert all(r["request_id"] != "foreign-1" for r in truth["requests"])
    added = model.add_foreign(1, ["late"], now)
    assert [v.session_id for v in model.list_sessions(["late"], now)] == added


def test_model_foreign_sessions_draw_nothing_from_the_rng():
    plain, with_foreign = exact_model(seed=9), exact_model(seed=9, foreign_sessions=3)
    ids = [accept(plain, START) for _ in range(3)]
    assert [accept(with_foreign, START) for _ in range(3)] == ids


# ====================================================================== the dialect, pure


def views(n: int) -> list[SessionView]:
    return [
        SessionView(f"s{i}", "running", (), WALL, "", "", "2025-06-15T15:06:40.000Z", i)
        for i in range(1, n + 1)
    ]


def make_dialect(**kw: Any) -> Dialect:
    return Dialect(
        dataclasses.replace(DialectParams(), **kw), rng=random.Random(3), time_scale=1.0
    )


def items_of(body: dict[str, Any]) -> list[str]:
    return [item["session_id"] for item in body["data"]["items"]]


def test_paging_truncate():
    d = make_dialect(list_paging="truncate", list_page_size=3)
    body = d.list_body(views(7), {"page": "2"}, ["page"])  # page means nothing here
    assert items_of(body) == ["s1", "s2", "s3"] and body["data"]["count"] == 7
    assert "next_cursor" not in body["data"]
    assert d.counters()["list_answers_with_more"] == 1


def test_paging_by_page_and_limit():
    d = make_dialect(list_paging="page", list_page_size=3)
    all_views = views(7)
    pages = [items_of(d.list_body(all_views, {"page": str(n)}, ["page"])) for n in (1, 2, 3, 4)]
    assert pages == [["s1", "s2", "s3"], ["s4", "s5", "s6"], ["s7"], []]
    # limit is capped at the page size; below it, it is honoured.
    assert items_of(d.list_body(all_views, {"limit": "50"}, ["limit"])) == ["s1", "s2", "s3"]
    body = d.list_body(all_views, {"page": "2", "limit": "2"}, ["page", "limit"])
    assert items_of(body) == ["s3", "s4"] and body["data"]["count"] == 7
    counters = d.counters()
    assert counters["list_answers"] == 6
    assert counters["list_items_served"] == 3 + 3 + 1 + 0 + 3 + 2
    assert counters["list_answers_with_more"] == 4  # pages 1, 2, the capped one, page 2 of 2
    for query, keys in (
        ({"page": "0"}, ["page"]),
        ({"page": "x"}, ["page"]),
        ({"limit": "-1"}, ["limit"]),
        ({"page": "\u0661"}, ["page"]),  # ARABIC-INDIC DIGIT ONE: no page number
        ({"page": "1"}, ["page", "page"]),
    ):
        with pytest.raises(InputError):
            d.list_body(all_views, query, keys)
    assert d.counters()["list_answers"] == 6  # refusals serve nothing


def test_paging_by_cursor_skips_nothing_when_sessions_end_between_calls():
    d = make_dialect(list_paging="cursor", list_page_size=3)
    all_views = views(8)
    first = d.list_body(all_views, {}, [])["data"]
    assert [i["session_id"] for i in first["items"]] == ["s1", "s2", "s3"]
    assert first["count"] == 8 and first["next_cursor"] == encode_cursor(3)
    # s2 and s4 end before the next call: the cursor still continues after s3.
    remaining = [v for v in all_views if v.session_id not in ("s2", "s4")]
    second = d.list_body(remaining, {"cursor": first["next_cursor"]}, ["cursor"])["data"]
    assert [i["session_id"] for i in second["items"]] == ["s5", "s6", "s7"]
    assert second["count"] == 6
    third = d.list_body(remaining, {"cursor": second["next_cursor"]}, ["cursor"])["data"]
    assert [i["session_id"] for i in third["items"]] == ["s8"] and third["next_cursor"] is None
    for bad in ("nonsense", encode_cursor(3) + "!", "YmVmb3JlOjM"):  # the last: "before:3"
        with pytest.raises(InputError, match="cursor"):
            d.list_body(all_views, {"cursor": bad}, ["cursor"])


def test_retry_after_forms():
    wall = WALL + 0.3
    assert make_dialect().retry_after(1.2, wall, 429) == "2"  # integer at time scale 1
    assert make_dialect(retry_after_format="decimal").retry_after(1.2, wall, 429) == "1.2"
    # IMF-fixdate: now + 1.2 s = ...01.5, rounded up to the next whole second.
    dated = make_dialect(retry_after_format="http_date")
    assert dated.retry_after(1.2, wall, 503) == "Sun, 15 Jun 2025 15:06:42 GMT"
    assert dated.counters()["retry_after_served"] == {"503": 1}
    scaled = Dialect(DialectParams(), rng=random.Random(1), time_scale=0.02)
    assert scaled.retry_after(0.02, wall, 429) == "0.02"  # today's decimal when scaled


@pytest.mark.parametrize(
    ("knobs", "answers"),
    [
        ({}, (200, 200, 401)),
        ({"delete_status": 204, "delete_ended_status": 204}, (204, 204, 401)),
        ({"delete_ended_status": 410, "delete_unknown_status": 404}, (200, 410, 404)),
    ],
)
def test_delete_answers_by_result(knobs, answers):
    d = make_dialect(**knobs)
    results = (EndResult.ENDED, EndResult.ALREADY_ENDED, EndResult.UNKNOWN)
    for result, expected in zip(results, answers, strict=True):
        status, body = d.delete_answer(result)
        assert status == expected
        if status == 204:
            assert body is None
        elif status == 200:
            assert body == {"data": {"status": "success"}}
        else:
            assert body is not None and body["error"]["code"] == status
    assert d.counters()["delete_results"] == {"ended": 1, "already_ended": 1, "unknown": 1}


def test_redirect_follow_up_is_served_so_redirects_never_loop():
    d = make_dialect(redirect_rate=1.0, redirect_codes=(308,), redirect_endpoints=("status",))
    assert d.redirect("status", "/a") == (308, "same_origin")
    assert d.redirect("status", "/a") is None  # the follow-up
    assert d.redirect("status", "/a") == (308, "same_origin")  # a new request again
    assert d.redirect("delete", "/a") is None  # not a redirected endpoint
    counters = d.counters()
    assert (counters["redirects"], counters["redirect_follow_ups"]) == (2, 1)
    assert counters["redirects_by_endpoint"] == {"status": 2}


# ====================================================================== on loopback: default


def test_default_answers_are_todays_bytes():
    """The default dialect serves exactly the bodies and codes served before dialects."""
    with running("fast", seed=5) as sim:
        api = sim.client
        created = api.post("/v1/sessions/async", json={"session": {"tags": ["d"]}})
        rid = created.json()["data"]["request_id"]
        assert created.status_code == 200
        assert created.content == orjson.dumps(
            {"data": {"request_id": rid, "status": "pending", "session_id": None}}
        )
        stamp = bodies.iso(sim.request_truth(rid)["created"]["wall"])
        assert sim.status(rid).content == orjson.dumps(
            {
                "data": {
                    "request_id": rid,
                    "status": "pending",
                    "created_at": stamp,
                    "progress": {"current_phase": "queued"},
                }
            }
        )
        data = sim.run_until(rid, lambda d: d["status"] == "ready")
        sid = data["session"]["session_id"]
        assert sim.app.cdp is not None
        # The session's own CDP websocket on the simulator's port, its secret in the query.
        cdp_url = f"ws{sim.url.removeprefix('http')}/cdp/{sid}?token={sim.app.cdp.token(sid)}"
        assert data["session"] == {
            "session_id": sid,
            "status": "running",
            "cdp_url": cdp_url,
            "live_view_url": f"https://live.simulator.invalid/sessions/{sid}",
        }
        listed = api.get("/v1/sessions/all/status", params={"tags": "d"})
        session_stamp = listed.json()["data"]["items"][0]["created_at"]
        assert listed.content == orjson.dumps(
            {
                "data": {
                    "count": 1,
                    "items": [
                        {"session_id": sid, "status": "running", "tags": ["d"],
                         "created_at": session_stamp}
                    ],
                }
            }
        )
        success = orjson.dumps({"data": {"status": "success"}})
        for _ in range(2):  # ending and ending again: both 200 success
            ended = api.delete(f"/v1/sessions/{sid}")
            assert (ended.status_code, ended.content) == (200, success)
        unknown = api.delete("/v1/sessions/no-such-session")
        assert (unknown.status_code, unknown.content) == (
            401,
            bodies.error_bytes(401, "Invalid API Key or browser session ID"),
        )
        after = sim.status(rid).json()["data"]
        assert (after["status"], after["session"]["status"]) == ("completed", "ended")
        assert api.get("/v1/sessions/all/status", params={"tags": "d"}).json()["data"] == {
            "count": 0, "items": []
        }  # fmt: skip
        counters = sim.counters()
        assert counters["dialect"] == {
            "polls_without_progress": 0,
            "unknown_phases_served": 0,
            "unknown_phases_by_word": {},
            "phase_ready_before_status": 0,
            "ready_without_session": 0,
            "status_after_end": {},
            "delete_answers": {"200": 2, "401": 1},
            "delete_results": {"ended": 1, "already_ended": 1, "unknown": 1},
            "delete_ended_answered_500": 0,
            "list_answers": 2,
            "list_items_served": 1,
            "list_answers_with_more": 0,
            "list_tag_filter_ignored": 0,
            "redirects": 0,
            "redirects_by_code": {},
            "redirects_by_target": {},
            "redirects_by_endpoint": {},
            "redirect_follow_ups": 0,
            "retry_after_served": {},
        }
        assert counters["other_origin"] == {
            "url": "", "requests": 0, "with_api_key": 0, "by_method": {}, "recent": []
        }  # fmt: skip
        assert counters["foreign"] == {"sessions": 0, "live": 0, "ended": 0, "ended_by": {}}
        assert sim.truth()["foreign_sessions"] == []


def test_a_dialect_shifts_no_model_draw():
    """Same seed, same clock steps: the dialect changes answers, never the true timings."""

    def journey(profile: str | Profile) -> tuple[list[str], list[Any]]:
        with running(profile, seed=11) as sim:
            ids = [sim.create() for _ in range(3)]
            for rid in ids:
                sim.run_until(rid, lambda d: d["status"] in ("ready", "failed"))
            truth = sim.truth()["requests"]
            # Times relative to the start (the wall clock differs between runs).
            return ids, [
                ([(t["status"], t["phase"], t["t"]) for t in r["transitions"]], r["ready_t"])
                for r in truth
            ]

    plain = journey("fast")
    assert len(plain[0]) == 3
    assert journey("dialect-unknown-phase") == plain
    assert journey(fast_with(no_progress_rate=0.5, extra_fields=True)) == plain


# ====================================================================== session words, list


@pytest.mark.parametrize(
    ("profile", "live", "ended"),
    [
        ("dialect-spec-words", "running", "completed"),
        ("dialect-other-words", "active", "terminated"),
    ],
)
def test_session_words_everywhere_and_ended_sessions_listed(profile, live, ended):
    with running(profile) as sim:
        api = sim.client
        rid, sid = sim.ready_session(tags=["w"])
        assert sim.status(rid).json()["data"]["session"]["status"] == live
        assert api.get(f"/v1/sessions/{sid}").json()["data"]["status"] == live
        listed = api.get("/v1/sessions/all/status", params={"tags": "w"}).json()["data"]
        assert [(i["session_id"], i["status"]) for i in listed["items"]] == [(sid, live)]
        assert api.delete(f"/v1/sessions/{sid}").status_code == 200
        assert sim.status(rid).json()["data"]["session"]["status"] == ended
        assert api.get(f"/v1/sessions/{sid}").json()["data"]["status"] == ended
        listed = api.get("/v1/sessions/all/status", params={"tags": "w"}).json()["data"]
        assert listed == {
            "count": 1,
            "items": [dict(listed["items"][0], session_id=sid, status=ended)],
        }
        assert sim.counters()["live_sessions"] == 0


def test_ended_sessions_leave_the_list_unless_the_dialect_keeps_them():
    with running(fast_with(live_session_status="idle", ended_session_status="over")) as sim:
        _, sid = sim.ready_session(tags=["gone"])
        sim.client.delete(f"/v1/sessions/{sid}")
        listed = sim.client.get("/v1/sessions/all/status", params={"tags": "gone"}).json()
        assert listed["data"] == {"count": 0, "items": []}


def start_sessions(sim: Any, n: int, tag: str) -> list[str]:
    return [sim.ready_session(tags=[tag])[1] for _ in range(n)]


def test_list_truncated_says_the_true_count():
    with running("dialect-truncated") as sim:
        ids = start_sessions(sim, 7, "tr")
        data = sim.client.get("/v1/sessions/all/status", params={"tags": "tr"}).json()["data"]
        assert data["count"] == 7
        assert [i["session_id"] for i in data["items"]] == ids[:5]
        assert "next_cursor" not in data
        # No way to get the rest: page and cursor mean nothing here.
        again = sim.client.get("/v1/sessions/all/status", params={"tags": "tr", "page": "2"})
        assert [i["session_id"] for i in again.json()["data"]["items"]] == ids[:5]
        dialect = sim.dialect()
        assert (dialect["list_answers"], dialect["list_items_served"]) == (2, 10)
        assert dialect["list_answers_with_more"] == 2


def test_list_paged_by_page_and_limit():
    with running("dialect-paged") as sim:
        ids = start_sessions(sim, 12, "pg")
        url = "/v1/sessions/all/status"
        seen = []
        for page in (1, 2, 3):
            data = sim.client.get(url, params={"tags": "pg", "page": page}).json()["data"]
            assert data["count"] == 12
            seen += [i["session_id"] for i in data["items"]]
        assert seen == ids
        capped = sim.client.get(url, params={"tags": "pg", "limit": 100}).json()["data"]
        assert len(capped["items"]) == 5  # the provider's page size caps limit
        assert_error(sim.client.get(url, params={"page": 0}), 400)
        assert_error(sim.client.get(url, params=[("page", 1), ("page", 2)]), 400)
        assert sim.dialect()["list_answers"] == 4


def test_list_paged_by_cursor():
    with running("dialect-cursor") as sim:
        ids = start_sessions(sim, 11, "cu")
        url = "/v1/sessions/all/status"
        seen, cursor, answers = [], None, 0
        while True:
            params = {"tags": "cu", **({"cursor": cursor} if cursor else {})}
            data = sim.client.get(url, params=params).json()["data"]
            answers += 1
            assert data["count"] == 11
            seen += [i["session_id"] for i in data["items"]]
            cursor = data["next_cursor"]
            if cursor is None:
                break
            assert isinstance(cursor, str)
        assert seen == ids and answers == 3
        assert_error(sim.client.get(url, params={"cursor": "not-a-cursor"}), 400)
        dialect = sim.dialect()
        assert (dialect["list_answers"], dialect["list_answers_with_more"]) == (3, 2)
        assert dialect["list_items_served"] == 11


def test_untagged_list_answers_foreign_sessions_and_truth_says_who_ended_them():
    with running("dialect-untagged-list") as sim:
        api = sim.client
        _, mine = sim.ready_session(tags=["run-1"])
        listed = api.get("/v1/sessions/all/status", params={"tags": "run-1"}).json()["data"]
        assert listed["count"] == 4  # the filter was dropped: 3 foreign sessions + mine
        foreign = [i["session_id"] for i in listed["items"] if i["tags"] == ["foreign"]]
        assert len(foreign) == 3 and mine in [i["session_id"] for i in listed["items"]]
        counters = sim.counters()
        assert counters["dialect"]["list_tag_filter_ignored"] == 1
        assert counters["foreign"] == {"sessions": 3, "live": 3, "ended": 0, "ended_by": {}}
        assert counters["live_sessions"] == 1
        # A clean-up that trusts the list ends a foreign session: the truth says so.
        assert api.delete(f"/v1/sessions/{foreign[0]}").status_code == 200
        assert api.delete(f"/v1/sessions/{mine}").status_code == 200
        counters = sim.counters()
        assert counters["foreign"]["ended"] == 1
        assert counters["foreign"]["ended_by"] == {"delete": 1}
        truth = sim.truth()["foreign_sessions"]
        assert [(f["session_id"], (f["ended"] or {}).get("by")) for f in truth] == [
            (foreign[0], "delete"), (foreign[1], None), (foreign[2], None)
        ]  # fmt: skip
        api.delete("/v1/sessions/all")
        assert sim.counters()["foreign"]["ended_by"] == {"delete": 1, "delete_all": 2}


def test_foreign_sessions_added_by_the_admin_endpoint():
    with running("fast") as sim:
        added = httpx.post(sim.url + "/_sim/foreign", json={"count": 2, "tags": ["team-b"]})
        assert added.status_code == 200
        ids = added.json()["session_ids"]
        listed = sim.client.get("/v1/sessions/all/status", params={"tags": "team-b"}).json()
        assert [i["session_id"] for i in listed["data"]["items"]] == ids
        # The tag filter holds here: the run's own tag does not list them.
        assert sim.client.get("/v1/sessions/all/status", params={"tags": "run"}).json()[
            "data"
        ]["count"] == 0
        default_tags = httpx.post(sim.url + "/_sim/foreign", json={"count": 1}).json()
        got = sim.client.get(f"/v1/sessions/{default_tags['session_ids'][0]}").json()["data"]
        assert got["configuration"]["session"]["tags"] == ["foreign"]
        for bad in ({"count": 0}, {"count": True}, {"count": 1, "tags": "x"}, [1], {}):
            assert_error(httpx.post(sim.url + "/_sim/foreign", json=bad), 400)
        assert sim.counters()["foreign"]["live"] == 3


# ====================================================================== DELETE


@pytest.mark.parametrize(
    ("profile", "fresh", "ended", "unknown"),
    [
        ("fast", 200, 200, 401),
        ("dialect-delete-204", 204, 204, 401),
        ("dialect-delete-401", 200, 401, 401),
        ("dialect-delete-404", 200, 404, 404),
        ("dialect-delete-410", 200, 410, 410),
    ],
)
def test_delete_answers(profile, fresh, ended, unknown):
    # The profiles also answer 30 % of DELETEs with a 500 that did end the session (the
    # harness's matrix meets the ended answer through them); off here, for exact answers.
    loaded = load_profile(profile, seed=1)
    loaded = dataclasses.replace(
        loaded, dialect=dataclasses.replace(loaded.dialect, delete_500_rate=0.0)
    )
    with running(loaded) as sim:
        _, sid = sim.ready_session()
        answers = [
            sim.client.delete(f"/v1/sessions/{sid}"),
            sim.client.delete(f"/v1/sessions/{sid}"),
            sim.client.delete("/v1/sessions/never-was"),
        ]
        assert [a.status_code for a in answers] == [fresh, ended, unknown]
        for answer in answers:
            if answer.status_code == 204:
                assert answer.content == b"" and "content-type" not in answer.headers
            elif answer.status_code == 200:
                assert answer.json() == {"data": {"status": "success"}}
            else:
                assert_error(answer, answer.status_code)
        dialect = sim.dialect()
        assert dialect["delete_answers"] == dict(
            Counter(str(code) for code in (fresh, ended, unknown))
        )
        assert dialect["delete_results"] == {"ended": 1, "already_ended": 1, "unknown": 1}
        assert sim.counters()["live_sessions"] == 0


def test_delete_that_ends_the_session_but_answers_500():
    with running(fast_with(delete_500_rate=1.0, delete_ended_status=410)) as sim:
        rid, sid = sim.ready_session()
        assert_error(sim.client.delete(f"/v1/sessions/{sid}"), 500)
        # It did end: truth and counters agree, and a retry gets the ended answer.
        truth = sim.request_truth(rid)
        assert truth["ended"]["by"] == "delete"
        assert sim.counters()["live_sessions"] == 0
        assert_error(sim.client.delete(f"/v1/sessions/{sid}"), 410)
        dialect = sim.dialect()
        assert dialect["delete_ended_answered_500"] == 1
        assert dialect["delete_answers"] == {"500": 1, "410": 1}


def test_bundled_delete_500_profile_loses_about_half_the_answers():
    with running("dialect-delete-500", seed=2) as sim:
        codes = Counter(
            sim.client.delete(f"/v1/sessions/{sim.ready_session()[1]}").status_code
            for _ in range(40)
        )
        assert set(codes) == {200, 500} and 8 <= codes[500] <= 32
        assert sim.dialect()["delete_ended_answered_500"] == codes[500]
        assert sim.counters()["live_sessions"] == 0


# ====================================================================== status endpoint


def poll_all(sim: Any, rid: str, until: Any, step: float = 0.002) -> list[dict[str, Any]]:
    """Every status answer's data, moving the clock `step` each time, until until(data)."""
    answers = []
    for _ in range(5000):
        data = sim.status(rid).json()["data"]
        answers.append(data)
        if until(data):
            return answers
        sim.clock.advance(step)
    raise AssertionError(f"never reached: {answers[-1]}")


def ready_with_session(data: dict[str, Any]) -> bool:
    return data["status"] == "ready" and "session" in data


def test_phase_first_answers_processing_with_phase_ready():
    with running("dialect-phase-first") as sim:
        rid = sim.create()
        answers = poll_all(sim, rid, ready_with_session)
        phase_first = [
            a for a in answers if a["status"] == "processing"
            and a["progress"]["current_phase"] == "ready"
        ]
        assert phase_first and all("session" not in a for a in phase_first)
        assert sim.dialect()["phase_ready_before_status"] == len(phase_first)
        truth = sim.request_truth(rid)
        phase_t = next(t["t"] for t in truth["transitions"] if t["phase"] == "ready")
        lead = load_profile("dialect-phase-first").dialect.phase_ready_lead_s * 0.02
        assert truth["ready_t"] - phase_t == pytest.approx(lead, abs=1e-9)
        assert true_durations(truth)["phase_ready_lead"] == pytest.approx(lead, abs=1e-9)
        # The poll steps of 2 ms see the lead of 40 ms: about 20 answers.
        assert len(phase_first) == pytest.approx(lead / 0.002, abs=1)


def test_polls_without_progress():
    with running("dialect-no-progress") as sim:
        rid = sim.create()
        answers = poll_all(sim, rid, ready_with_session)
        assert all("progress" not in a for a in answers)
        assert sim.dialect()["polls_without_progress"] == len(answers)
    with running(fast_with(no_progress_rate=0.5)) as sim:
        answers = []
        for _ in range(3):
            answers += poll_all(sim, sim.create(), ready_with_session)
        without = sum("progress" not in a for a in answers)
        assert 0 < without < len(answers)
        assert sim.dialect()["polls_without_progress"] == without


def test_unknown_phase_words():
    with running("dialect-unknown-phase", seed=4) as sim:
        answers = []
        for _ in range(3):
            answers += poll_all(sim, sim.create(), ready_with_session)
        spec = ("queued", "provisioning", "configuring", "ready")
        phases = [a["progress"]["current_phase"] for a in answers]
        words = Counter(phase for phase in phases if phase not in spec)
        assert set(words) == {"warming", "starting"}
        dialect = sim.dialect()
        assert dialect["unknown_phases_by_word"] == dict(words)
        assert dialect["unknown_phases_served"] == sum(words.values())
        assert 0.15 < sum(words.values()) / len(answers) < 0.45  # the profile's 30 %


def test_ready_before_the_session_object():
    with running("dialect-late-session") as sim:
        rid = sim.create(tags=["late"])
        answers = poll_all(sim, rid, ready_with_session)
        early = [a for a in answers if a["status"] == "ready" and "session" not in a]
        assert early
        truth = sim.request_truth(rid)
        lag = load_profile("dialect-late-session").dialect.session_lag_s * 0.02
        assert truth["session_shown_t"] - truth["ready_t"] == pytest.approx(lag, abs=1e-9)
        assert len(early) == pytest.approx(lag / 0.002, abs=1)
        assert sim.dialect()["ready_without_session"] == len(early)

    with running("dialect-late-session") as sim:
        rid = sim.create(tags=["late"])
        poll_all(sim, rid, lambda d: d["status"] == "ready")
        sid = sim.request_truth(rid)["session_id"]
        # While the row is missing, neither the list nor GET by id shows the session.
        url = "/v1/sessions/all/status"
        assert sim.client.get(url, params={"tags": "late"}).json()["data"]["count"] == 0
        assert_error(sim.client.get(f"/v1/sessions/{sid}"), 404)
        sim.clock.advance(lag)
        assert sim.client.get(url, params={"tags": "late"}).json()["data"]["count"] == 1
        assert sim.client.get(f"/v1/sessions/{sid}").status_code == 200


@pytest.mark.parametrize(
    ("profile", "answer"),
    [("fast", "completed"), ("dialect-after-end-ready", "ready"), ("dialect-after-end-404", 404)],
)
def test_status_after_the_session_ended(profile, answer):
    with running(profile) as sim:
        rid, sid = sim.ready_session()
        sim.client.delete(f"/v1/sessions/{sid}")
        response = sim.status(rid)
        if answer == 404:
            assert_error(response, 404)
        else:
            data = response.json()["data"]
            assert (data["status"], data["session"]["status"]) == (answer, "ended")
        assert sim.request_truth(rid)["transitions"][-1]["status"] == "completed"  # the truth
        expected = {} if answer == "completed" else {str(answer): 1}
        assert sim.dialect()["status_after_end"] == expected


def test_status_after_end_counts_only_what_the_dialect_changed():
    # The slow path (answers shaped one by one) counts like the cached one: nothing.
    with running("dialect-no-progress") as sim:
        rid, sid = sim.ready_session()
        sim.client.delete(f"/v1/sessions/{sid}")
        assert sim.status(rid).json()["data"]["status"] == "completed"
        assert sim.dialect()["status_after_end"] == {}


def test_completed_without_a_session_is_not_an_ended_session():
    # A request that completed without ever being ready keeps its `completed`.
    with running("dialect-after-end-404") as sim:
        sim.set_faults({"status": {"rate_completed": 1.0}})
        rid = sim.create()
        assert sim.status(rid).json()["data"]["status"] == "completed"
        assert sim.dialect()["status_after_end"] == {}


# ====================================================================== Retry-After


def test_retry_after_http_date_on_429_and_503():
    with running("dialect-retry-date") as sim:
        sim.set_faults({"billing": {"rate_429": 1.0, "retry_after_s": 10.0}})
        limited = sim.client.get("/v1/billing")
        assert_error(limited, 429)
        wall = sim.truth()["now"]["wall"]  # the clock has not moved since
        expected = email.utils.formatdate(math.ceil(wall + 10.0 * 0.02), usegmt=True)
        assert limited.headers["retry-after"] == expected
        when = email.utils.parsedate_to_datetime(limited.headers["retry-after"]).timestamp()
        assert wall + 0.2 <= when < wall + 1.2
        sim.set_faults({"billing": {"rate_5xx": 1.0, "retry_after_s": 10.0}})
        for _ in range(10):
            failed = sim.client.get("/v1/billing")
            assert_error(failed, 503)  # every injected 5xx is a 503 with this dialect
            assert failed.headers["retry-after"] == expected
        counters = sim.counters()
        assert counters["dialect"]["retry_after_served"] == {"429": 1, "503": 10}
        assert counters["faults_by_endpoint"]["billing"] == {"429": 1, "5xx": 10}


def test_retry_after_http_date_on_the_models_own_rate_limit():
    profile = dataclasses.replace(
        load_profile("dialect-retry-date"),
        rate_limit=dataclasses.replace(load_profile("fast").rate_limit, creates_per_s=1.0, burst=1),
        faults=MappingProxyType({}),
    )
    with running(profile) as sim:
        assert sim.client.post("/v1/sessions/async", json={}).status_code == 200
        refused = sim.client.post("/v1/sessions/async", json={})
        assert_error(refused, 429)
        email.utils.parsedate_to_datetime(refused.headers["retry-after"])  # a date, not seconds
        assert refused.headers["ratelimit"].startswith("limit=1, remaining=0, reset=")
        assert sim.dialect()["retry_after_served"] == {"429": 1}


def test_retry_after_decimal_at_real_time():
    profile = dataclasses.replace(
        load_profile("default"),
        dialect=dataclasses.replace(DialectParams(), retry_after_format="decimal"),
    )
    faults = {"billing": EndpointFaults(rate_429=1.0, retry_after_s=1.25)}
    with running(profile_with_faults(profile, faults)) as sim:
        assert sim.client.get("/v1/billing").headers["retry-after"] == "1.25"
    default_faulty = profile_with_faults(load_profile("default"), faults)
    with running(default_faulty) as sim:
        assert sim.client.get("/v1/billing").headers["retry-after"] == "2"  # today's integer
        # Without the dialect's 503, 5xx faults keep their 500/502/503 and no Retry-After.
        sim.set_faults({"billing": {"rate_5xx": 1.0}})
        answers = [sim.client.get("/v1/billing") for _ in range(20)]
        assert {a.status_code for a in answers} == {500, 502, 503}
        assert all("retry-after" not in a.headers for a in answers)


# ====================================================================== redirects


def redirect_profile(**kw: Any) -> Profile:
    return fast_with(redirect_rate=1.0, **kw)


@pytest.mark.parametrize("code", REDIRECTS)
def test_same_origin_redirect_and_its_follow_up(code):
    with running(redirect_profile(redirect_codes=(code,), redirect_endpoints=("create",))) as sim:
        body = {"session": {"tags": ["r"]}}
        moved = sim.client.post("/v1/sessions/async", json=body)
        assert moved.status_code == code
        assert moved.headers["location"] == sim.url + "/v1/sessions/async"
        assert moved.content == b""
        assert sim.counters()["creates_accepted"] == 0  # the redirected create did nothing
        followed = sim.client.post(moved.headers["location"], json=body)
        assert followed.status_code == 200
        dialect = sim.dialect()
        assert dialect["redirects"] == 1 and dialect["redirect_follow_ups"] == 1
        assert dialect["redirects_by_code"] == {str(code): 1}
        assert dialect["redirects_by_target"] == {"same_origin": 1}
        assert dialect["redirects_by_endpoint"] == {"create": 1}
        assert sim.counters()["creates_accepted"] == 1


def test_redirects_keep_the_query_and_come_before_the_key_check():
    with running(redirect_profile(redirect_codes=(302,), redirect_endpoints=("list",))) as sim:
        url = "/v1/sessions/all/status?tags=a%2Cb&page=2"
        moved = httpx.get(sim.url + url)  # no key: the gateway redirects first
        assert moved.status_code == 302 and moved.headers["location"] == sim.url + url
        assert_error(httpx.get(moved.headers["location"]), 401)  # the follow-up needs the key
        assert sim.dialect()["list_answers"] == 0


def test_a_redirected_delete_ends_nothing():
    profile = redirect_profile(redirect_codes=(307,), redirect_endpoints=("delete",))
    with running(profile) as sim:
        rid, sid = sim.ready_session()
        moved = sim.client.delete(f"/v1/sessions/{sid}")
        assert moved.status_code == 307
        assert sim.request_truth(rid)["ended"] is None
        assert sim.counters()["live_sessions"] == 1 and sim.dialect()["delete_answers"] == {}
        assert sim.client.delete(moved.headers["location"]).status_code == 200
        assert sim.request_truth(rid)["ended"]["by"] == "delete"


def test_other_origin_records_whether_the_key_came_along():
    profile = redirect_profile(
        redirect_codes=(308,), redirect_endpoints=("status",), redirect_targets=("other_origin",)
    )
    with running(profile) as sim:
        rid = sim.create()
        polls = sim.counters()["polls"]
        moved = sim.status(rid)
        assert moved.status_code == 308
        other = sim.other_origin
        assert other and other != sim.url
        assert httpx.URL(other).port != httpx.URL(sim.url).port  # another origin
        assert moved.headers["location"] == f"{other}/v1/sessions/async/{rid}/status"
        # A client that strips the key on a cross-origin redirect...
        assert_error(httpx.get(moved.headers["location"]), 401)
        # ...and one that carries it (httpx keeps custom headers across origins).
        with httpx.Client(headers=HEADERS, follow_redirects=True) as leaky:
            leaked = leaky.get(f"{sim.url}/v1/sessions/async/{rid}/status")
        assert_error(leaked, 401)
        assert [r.status_code for r in leaked.history] == [308]
        counters = sim.counters()
        assert counters["other_origin"]["requests"] == 2
        assert counters["other_origin"]["with_api_key"] == 1
        assert counters["other_origin"]["by_method"] == {"GET": 2}
        assert [r["with_api_key"] for r in counters["other_origin"]["recent"]] == [False, True]
        assert counters["other_origin"]["recent"][0]["path"] == f"/v1/sessions/async/{rid}/status"
        assert counters["polls"] == polls  # nothing reached the model
        assert counters["dialect"]["redirects_by_target"] == {"other_origin": 2}
        assert counters["dialect"]["redirect_follow_ups"] == 0


def test_redirect_rate_and_targets_are_drawn():
    with running("dialect-redirect", seed=6) as sim:
        answers = Counter()
        for _ in range(200):
            answers[sim.client.get("/v1/billing").status_code] += 1
        moved = sum(n for code, n in answers.items() if code in REDIRECTS)
        assert set(answers) <= {200, *REDIRECTS} and 20 <= moved <= 60  # the profile's 20 %
        dialect = sim.dialect()
        assert dialect["redirects"] == moved
        assert set(dialect["redirects_by_target"]) == {"same_origin", "other_origin"}
        assert set(dialect["redirects_by_code"]) == {"301", "302", "307", "308"}


def test_bench_simulate_opens_the_other_origin(api_key):
    with SimulatorProcess("dialect-redirect", seed=1, api_key=api_key) as sim:
        other = sim.counters()["other_origin"]["url"]
        assert other.startswith("http://127.0.0.1:") and other != sim.url
        assert_error(httpx.get(other + "/v1/billing", headers={"anchor-api-key": api_key}), 401)
        counters = sim.counters()["other_origin"]
        assert (counters["requests"], counters["with_api_key"]) == (1, 1)
    with SimulatorProcess("fast", seed=1, api_key=api_key) as sim:
        assert sim.counters()["other_origin"]["url"] == ""  # no redirects, no listener
        ids = sim.add_foreign(2, ["team-c"])
        listed = httpx.get(
            sim.url + "/v1/sessions/all/status",
            params={"tags": "team-c"},
            headers={"anchor-api-key": api_key},
        ).json()["data"]
        assert [i["session_id"] for i in listed["items"]] == ids
        assert sim.counters()["foreign"]["live"] == 2


# ====================================================================== create, extra fields


@pytest.mark.parametrize("code", [201, 202])
def test_create_status_code(code):
    with running(fast_with(create_status=code)) as sim:
        created = sim.client.post("/v1/sessions/async", json={})
        assert created.status_code == code
        assert set(created.json()["data"]) == {"request_id", "status", "session_id"}
        assert_error(sim.client.post("/v1/sessions/async", content=b"{"), 400)


def test_malformed_fault_cuts_a_dialects_2xx_but_never_an_empty_204():
    profile = fast_with(create_status=202, delete_status=204)
    with running(profile) as sim:
        _, sid = sim.ready_session()
        sim.set_faults({"create": {"rate_malformed": 1.0}, "delete": {"rate_malformed": 1.0}})
        cut = sim.client.post("/v1/sessions/async", json={})
        assert cut.status_code == 202
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(cut.content)
        ended = sim.client.delete(f"/v1/sessions/{sid}")
        assert (ended.status_code, ended.content) == (204, b"")
        counters = sim.counters()
        assert counters["faults_by_endpoint"] == {"create": {"malformed": 1}}
        assert counters["creates_accepted"] == 2  # the cut create did happen


def test_bundled_create_202():
    with running("dialect-create-202") as sim:
        assert sim.client.post("/v1/sessions/async", json={}).status_code == 202


def assert_decorated(body: dict[str, Any]) -> None:
    """The extra field sits in every object the spec describes in this body."""
    assert bodies.EXTRA_FIELD in body
    inner = body.get("data", body.get("error"))
    assert isinstance(inner, dict) and bodies.EXTRA_FIELD in inner
    for child in ("session", "progress"):
        if child in inner:
            assert bodies.EXTRA_FIELD in inner[child], child
    for item in inner.get("items", ()):
        assert bodies.EXTRA_FIELD in item


def test_extra_fields_in_every_object():
    with running("dialect-extra-fields") as sim:
        api = sim.client
        rid, sid = sim.ready_session(tags=["x"])
        answers = [
            api.post("/v1/sessions/async", json={}),
            sim.status(rid),
            api.get(f"/v1/sessions/{sid}"),
            api.get("/v1/sessions/all/status", params={"tags": "x"}),
            api.get("/v1/billing"),
            api.delete(f"/v1/sessions/{sid}"),
            api.delete("/v1/sessions/unknown"),
            api.get(f"/v1/sessions/async/{rid}x/status"),
            httpx.get(sim.url + "/v1/billing"),
            api.patch("/v1/billing"),
            api.delete("/v1/sessions/all"),
        ]
        codes = [a.status_code for a in answers]
        assert codes == [200, 200, 200, 200, 200, 200, 401, 404, 401, 405, 200]
        status = answers[1].json()["data"]
        assert {"session", "progress"} <= set(status)
        assert len(answers[3].json()["data"]["items"]) == 1
        for answer in answers:
            assert_decorated(answer.json())
    with running("fast") as sim:  # and none by default
        rid, _ = sim.ready_session()
        assert bodies.EXTRA_FIELD.encode() not in sim.status(rid).content


# ====================================================================== bundled, as a process


class MixTally:
    """What a careful client saw against dialect-mix."""

    def __init__(self) -> None:
        self.codes: Counter[int] = Counter()
        self.transport_errors = 0
        self.ready = 0
        self.deleted: set[str] = set()


async def mix_call(
    client: httpx.AsyncClient, tally: MixTally, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    """One call that follows same-origin redirects only (never carries the key away)."""
    for _ in range(10):
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError:
            tally.transport_errors += 1
            return None
        tally.codes[response.status_code] += 1
        if response.status_code not in REDIRECTS:
            return response
        location = httpx.URL(response.headers["location"])
        if location.port != client.base_url.port:
            return None  # another origin: do not follow, the caller retries
        url = location.raw_path.decode()
    return None


async def mix_journey(client: httpx.AsyncClient, tally: MixTally, until: float) -> None:
    while time.monotonic() < until:
        created = await mix_call(client, tally, "POST", "/v1/sessions/async", json={
            "session": {"tags": ["mix-run"]}
        })
        if created is None or created.status_code != 202:
            await asyncio.sleep(0.01)
            continue
        request_id = created.json()["data"]["request_id"]
        session_id = None
        while time.monotonic() < until + 5 and session_id is None:
            answer = await mix_call(client, tally, "GET", f"/v1/sessions/async/{request_id}/status")
            if answer is not None and answer.status_code == 200:
                data = answer.json()["data"]
                if data["status"] == "ready" and "session" in data:
                    session_id = data["session"]["session_id"]
                elif data["status"] not in ("pending", "processing", "ready"):
                    break
            await asyncio.sleep(0.005)
        if session_id is None:
            continue
        tally.ready += 1
        for _ in range(20):  # until the end is confirmed: 204 fresh, 410 already ended
            ended = await mix_call(client, tally, "DELETE", f"/v1/sessions/{session_id}")
            if ended is not None and ended.status_code in (204, 410):
                tally.deleted.add(session_id)
                break
            await asyncio.sleep(0.01)


@pytest.mark.slow
def test_dialect_mix_under_load_with_a_careful_client(api_key):
    with SimulatorProcess("dialect-mix", seed=21, api_key=api_key) as sim:

        async def load() -> MixTally:
            tally = MixTally()
            async with httpx.AsyncClient(
                base_url=sim.url, headers={"anchor-api-key": api_key}, timeout=30
            ) as client:
                until = time.monotonic() + 2.0
                await asyncio.gather(*(mix_journey(client, tally, until) for _ in range(6)))
            return tally

        tally = asyncio.run(load())
        counters = sim.counters()
        dialect = counters["dialect"]
        assert counters["server_errors"] == 0
        assert tally.ready > 10 and len(tally.deleted) == tally.ready
        # Every reading was served...
        for key in ("polls_without_progress", "unknown_phases_served", "phase_ready_before_status",
                    "ready_without_session", "redirects", "redirect_follow_ups"):
            assert dialect[key] > 0, key
        assert set(dialect["delete_answers"]) >= {"204", "410"}
        assert counters["faults"].get("429", 0) > 0 and counters["faults"].get("5xx", 0) > 0
        # ...and the careful client never carried the key away, nor ended a foreign session.
        assert counters["other_origin"]["with_api_key"] == 0
        assert counters["foreign"] == {"sessions": 3, "live": 3, "ended": 0, "ended_by": {}}
        assert counters["live_sessions"] == 0
        truth = sim.truth()
        ended = {r["session_id"] for r in truth["requests"] if r["ended"]}
        assert tally.deleted <= ended
