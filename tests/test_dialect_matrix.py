"""The harness against every reading of the spec the simulator serves, and all of them at once.

Each bundled `dialect-*` profile is a provider that follows the spec and the API doc
but not our simulator's habits.  Against each, a real run must end exit 0 (nothing
went wrong), with outcomes exactly matching the simulator's ground truth, no session
of ours alive at the end, a left-alive count equal to the truth, no foreign session
touched, the key never sent to another origin, every ready estimate within its
stated bound of the true ready instant (the *status's*), and the dialect's feature
really served (so the test cannot pass by not meeting it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dialect_runs import run_dialect
from locust_runs import assert_sound

from bench.core import exitcodes
from bench.simulator.truth import true_durations

pytestmark = pytest.mark.slow
# What the clock may add to a stated bound: the simulator's own scheduling (ms).
LATENCY_ALLOWANCE_S = 0.005

Check = Callable[[dict[str, Any], dict[str, Any]], bool]


def served(key: str, minimum: int = 1) -> Check:
    return lambda dialect, doc: _count(dialect[key]) >= minimum


def _count(value: Any) -> int:
    return sum(value.values()) if isinstance(value, dict) else int(value)


def delete_answered(code: int) -> Check:
    return lambda dialect, doc: int(dialect["delete_answers"].get(str(code), 0)) > 0


def listing_incomplete(dialect: dict[str, Any], doc: dict[str, Any]) -> bool:
    return not doc["cleanup"]["sweep_ok"] and "says" in (doc["cleanup"]["listing_error"] or "")


def metric_recorded(metric: str) -> Check:
    def check(dialect: dict[str, Any], doc: dict[str, Any]) -> bool:
        return any(
            metric in step[part]["histograms"] for step in doc["steps"]
            for part in ("measured", "warmup")
        )  # fmt: skip

    return check


# profile -> what must have been served for the run to count as meeting the dialect
DIALECTS: dict[str, list[Check]] = {
    "dialect-spec-words": [served("list_items_served")],
    "dialect-other-words": [served("list_items_served")],
    "dialect-paged": [served("list_answers_with_more")],
    "dialect-cursor": [served("list_answers_with_more")],
    "dialect-truncated": [served("list_answers_with_more"), listing_incomplete],
    "dialect-untagged-list": [served("list_tag_filter_ignored")],
    "dialect-delete-204": [delete_answered(204)],
    "dialect-delete-401": [served("delete_ended_answered_500"), delete_answered(401)],
    "dialect-delete-404": [served("delete_ended_answered_500"), delete_answered(404)],
    "dialect-delete-410": [served("delete_ended_answered_500"), delete_answered(410)],
    "dialect-delete-500": [served("delete_ended_answered_500")],
    "dialect-phase-first": [served("phase_ready_before_status"), metric_recorded("unknown")],
    "dialect-no-progress": [served("polls_without_progress"), metric_recorded("unknown")],
    "dialect-unknown-phase": [served("unknown_phases_served")],
    "dialect-late-session": [served("ready_without_session")],
    "dialect-after-end-404": [],
    "dialect-after-end-ready": [],
    "dialect-retry-date": [served("retry_after_served")],
    "dialect-redirect": [served("redirects"), served("redirects_by_target")],
    "dialect-create-202": [],
    "dialect-extra-fields": [],
    "dialect-mix": [
        served("redirects"), served("retry_after_served"), served("list_answers_with_more"),
        served("list_tag_filter_ignored"), served("ready_without_session"),
        served("polls_without_progress"), served("phase_ready_before_status"),
    ],
}  # fmt: skip


def test_every_bundled_dialect_is_in_the_matrix():
    folder = Path(__file__).resolve().parent.parent / "bench" / "simulator" / "profiles"
    bundled = {p.stem for p in folder.glob("dialect-*.toml")}
    assert bundled == set(DIALECTS)


@pytest.mark.parametrize("profile", sorted(DIALECTS))
def test_the_harness_speaks_the_dialect(profile, tmp_path):
    result = run_dialect(profile, tmp_path / "run")
    run, counters = result.run, result.counters
    assert run.code == exitcodes.OK, (run.doc["run"]["exit_reason"], run.stderr[-3000:])
    assert_sound(run)
    doc = run.doc
    cleanup = doc["cleanup"]

    # Nothing of ours alive, the count the truth's, nothing foreign touched, no key abroad.
    assert counters["live_sessions"] == 0, counters
    assert cleanup["left_alive"] == counters["live_sessions"] and cleanup["leaked"] == 0
    assert counters["foreign"]["ended"] == 0, counters["foreign"]
    assert counters["other_origin"]["with_api_key"] == 0, counters["other_origin"]
    assert counters["leaked_sessions"] == 0  # none died of its idle timeout

    # Outcomes exactly as the truth has them.
    ours = result.ours
    outcomes = run.outcomes
    assert outcomes.get("ready", 0) == sum(r["outcome"] == "ready" for r in ours.values()) > 0
    assert outcomes.get("failed", 0) == sum(r["outcome"] == "failed" for r in ours.values())
    assert set(outcomes) <= {"ready", "failed", "create_rejected"}, outcomes
    for journey in run.journeys:
        if journey["outcome"] != "ready":
            continue
        record = ours[journey["request_id"]]
        assert record["session_id"] == journey["session_id"]
        assert record["ended"]["by"] == "delete", record
        # ready: from the POST's send to the *status's* ready instant, within the bound
        # the harness states (plus the create's latency: the truth starts at the server)
        true = true_durations(record)["ready"]
        value = journey["samples_us"]["ready"][0] / 1e6
        bound = journey["estimates"]["ready_at"][1] + journey["samples_us"]["create"][0] / 1e6
        assert abs(value - true) <= bound + LATENCY_ALLOWANCE_S, (journey, true)

    # The dialect was really met.
    dialect = counters["dialect"]
    for check in DIALECTS[profile]:
        assert check(dialect, doc), (profile, dialect, cleanup)
