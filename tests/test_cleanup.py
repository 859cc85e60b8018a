"""Ending what a run left behind, on a scripted transport and a fake clock."""

from __future__ import annotations

import orjson

from bench.measure.cleanup import Orphans, resolve, sweep
from bench.measure.driver import Reply


def status_body(status: str, session_id: str | None) -> bytes:
    """A status answer in the API's shape (the session id sits under `session`)."""
    data: dict = {"status": status}
    if session_id is not None:
        data["session"] = {"session_id": session_id}
    return orjson.dumps({"data": data})


class FakeTransport:
    """Answers from a script; every call costs `call_s` on the fake clock."""

    def __init__(self, clock: list[float], call_s: float = 0.01) -> None:
        self.clock, self.call_s = clock, call_s
        self.statuses: dict[str, Reply] = {}
        self.live: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def _tick(self, call: tuple[str, str]) -> None:
        self.calls.append(call)
        self.clock[0] += self.call_s

    def status(self, request_id: str) -> Reply:
        self._tick(("status", request_id))
        return self.statuses.get(request_id, Reply(404))

    def release(self, session_id: str) -> Reply:
        self._tick(("release", session_id))
        if session_id in self.live:
            self.live.discard(session_id)
            return Reply(204)
        return Reply(401)  # what the real API answers for a session it does not know

    def list_tagged(self, tag: str) -> Reply:
        self._tick(("list", tag))
        items = [{"session_id": s, "status": "running"} for s in sorted(self.live)]
        return Reply(200, orjson.dumps({"data": {"items": items}}))


def run_resolve(orphans: Orphans, transport: FakeTransport, clock: list[float], deadline: float):
    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return resolve(orphans, transport, deadline=deadline, poll_interval=0.5,  # type: ignore[arg-type]
                   clock=lambda: clock[0], sleep=sleep)  # fmt: skip


def test_resolve_ends_known_sessions_and_finds_the_rest():
    clock = [0.0]
    transport = FakeTransport(clock)
    transport.live = {"s1", "s2"}
    transport.statuses = {
        "r2": Reply(200, status_body("ready", "s2")),
        "r3": Reply(200, status_body("failed", None)),
    }
    orphans = Orphans()
    orphans.request("r1")
    orphans.session("r1", "s1")  # seen ready: ended directly
    orphans.request("r2")  # cut before ready: polled, then ended
    orphans.request("r3")  # failed: nothing to end
    orphans.request("r4")  # unknown to the target (404): nothing to end
    assert run_resolve(orphans, transport, clock, deadline=10.0) == 2
    assert not orphans.open and not transport.live


def test_resolve_keeps_polling_a_pending_request_until_the_deadline():
    clock = [0.0]
    transport = FakeTransport(clock)
    transport.statuses = {"r1": Reply(200, status_body("pending", None))}
    orphans = Orphans()
    orphans.request("r1")
    assert run_resolve(orphans, transport, clock, deadline=3.0) == 0
    assert orphans.open == {"r1": None}  # left for the tag sweep
    assert 3.0 <= clock[0] < 3.0 + 0.5 + transport.call_s


def test_a_hung_target_costs_one_call_past_the_deadline_not_one_per_request():
    clock = [0.0]
    transport = FakeTransport(clock, call_s=10.0)  # every call times out after 10 s
    transport.statuses = {f"r{i}": Reply(0) for i in range(6)}
    orphans = Orphans()
    for i in range(6):
        orphans.request(f"r{i}")
    run_resolve(orphans, transport, clock, deadline=15.0)
    assert len(transport.calls) == 2 and clock[0] == 20.0
    assert len(orphans.open) == 6


def test_sweep_ends_every_live_tagged_session_and_reports_what_is_left():
    clock = [0.0]
    transport = FakeTransport(clock)
    transport.live = {"a", "b"}
    ended, alive = sweep(transport, "bench-run-x")  # type: ignore[arg-type]
    assert (ended, alive) == (2, [])
