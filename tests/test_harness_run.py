"""Real Locust runs of the harness: exit codes, cost guard, clean-up, explicit master/workers."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest
from locust_runs import free_port, locust_command, locust_workers

from bench.core import exitcodes
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
# A canary: if the key ever shows up in output or files, a test below fails.
KEY = "canary-key-7f3a9c1e-never-print"

pytestmark = pytest.mark.slow

SHORT = (
    "--ladder", "1,2",
    "--step-time", "2",
    "--settle", "0.2",
    "--poll-interval", "0.01",
    "--ready-timeout", "5",
)  # fmt: skip


def locust(
    *args: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ANCHOR_API_KEY": KEY, **(env or {})}
    return subprocess.run(
        locust_command("--headless", "--only-summary", *args),
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def assert_timeline_accounts_for_every_journey(doc: dict) -> None:
    """The timeline's per-interval counts add up to the run's totals: nothing lost or doubled."""
    samples = doc["timeline"]["samples"]
    assert doc["timeline"]["interval_s"] > 0 and len(samples) >= 2
    outcomes = doc["totals"]["outcomes"]
    assert sum(s["started"] for s in samples) == doc["totals"]["journeys"]
    assert sum(s["ready"] for s in samples) == outcomes["ready"]
    failed = sum(n for name, n in outcomes.items() if name not in ("ready", "aborted"))
    assert sum(s["failed"] for s in samples) == failed
    times = [s["t_s"] for s in samples]
    assert times == sorted(times)
    assert {s["target"] for s in samples if s["step"] is not None} == {1, 2}


def assert_key_never_written(proc: subprocess.CompletedProcess, directory: Path) -> None:
    assert KEY not in proc.stdout and KEY not in proc.stderr
    for path in directory.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.fixture
def simulator(tmp_path):
    with SimulatorProcess("fast", seed=5, truth=True, api_key=KEY) as sim:
        yield sim


def test_embedded_simulator_run_is_clean(tmp_path):
    out = tmp_path / "run"
    proc = locust(
        *SHORT, "--sim-profile", "fast", "--results-dir", str(out), "--release", "r1",
        "--run-id", "itest-1",
    )  # fmt: skip
    assert proc.returncode == exitcodes.OK, proc.stderr[-2000:]
    results = load_results(out / "results.json")
    doc = results.document
    assert doc["run"]["id"] == "itest-1"
    assert doc["run"]["target"]["kind"] == "simulator"
    assert doc["run"]["release"] == "r1"
    assert doc["totals"]["invariant_ok"]
    assert doc["totals"]["outcomes"]["ready"] > 0
    assert doc["cleanup"] == {**doc["cleanup"], "left_alive": 0, "sweep_ok": True}
    assert [s["target_concurrency"] for s in doc["steps"]] == [1, 2]
    assert_timeline_accounts_for_every_journey(doc)
    # The report is built at the end of the run, next to the results.
    assert "release: r1" in (out / "summary.md").read_text()
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / "plots" / "ready_percentiles.png").stat().st_size > 0
    # HDR interval logs, one per recorded metric, in the standard text format.
    ready_log = (out / "hlog" / "ready.hlog").read_text()
    assert ready_log.startswith("#[Histogram log format version 1.3]")
    assert_key_never_written(proc, tmp_path)


def test_achieved_concurrency_excludes_the_drain(tmp_path):
    """Journeys that run on after the last step (here: held 1 s) are no step's concurrency."""
    out = tmp_path / "run"
    proc = locust(
        "--ladder", "2", "--step-time", "2", "--settle", "0.2", "--poll-interval", "0.01",
        "--hold", "1", "--sim-profile", "fast", "--results-dir", str(out),
    )  # fmt: skip
    assert proc.returncode == exitcodes.OK, proc.stderr[-2000:]
    doc = load_results(out / "results.json").document
    (step,) = doc["steps"]
    # Each slot is busy from the step's start to its end (a new journey starts as soon
    # as one ends); charging the drain to the step read 2.09 here before the fix.
    assert 1.8 <= step["achieved_concurrency"] <= 2.0 + 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ladder", "1,x"), "'x' is not an integer"),
        (("--run-id", "../x"), "'../x' must be 1-64 letters"),
        (("--results-dir", "/dev/null/run"), "--results-dir: cannot write to /dev/null/run"),
        (("--ladder", "0,2"), "at least 1"),
        (("--poll-interval", "-1"), "must be greater than 0"),
        (("--step-time", "nan"), "finite"),
        # The option's converter once truncated this to a cap of 1 session.
        (("--max-sessions", "1.5"), "--max-sessions: expected an integer, got '1.5'"),
        (("--max-poll-errors", "2.5"), "expected an integer"),
    ],
)
def test_bad_option_is_one_line_and_exit_2(args, message):
    proc = locust(*args)
    assert proc.returncode == exitcodes.USAGE
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settle_not_shorter_than_step_is_refused():
    proc = locust("--step-time", "2", "--settle", "2")
    assert proc.returncode == exitcodes.USAGE
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: --settle")
    assert "Traceback" not in proc.stderr


def test_non_loopback_host_needs_max_sessions():
    # Refused before any connection is attempted.
    proc = locust("--host", "https://api.example.invalid")
    assert proc.returncode == exitcodes.USAGE
    assert "--max-sessions" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert KEY not in proc.stderr


def test_unreachable_target_has_its_own_exit_code(tmp_path):
    host = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    proc = locust(*SHORT, "--host", host, "--results-dir", str(out), "--no-report")
    assert proc.returncode == exitcodes.TARGET_UNREACHABLE, proc.stderr[-2000:]
    doc = load_results(out / "results.json").document
    names = {p.name for p in out.iterdir()}
    assert "results.json" in names and not names & {"report.html", "summary.md", "plots"}
    outcomes = doc["totals"]["outcomes"]
    assert outcomes["create_error"] == doc["totals"]["journeys"] > 0


def test_max_sessions_caps_creates_exactly(simulator, tmp_path):
    proc = locust(
        *SHORT, "--host", simulator.url, "--max-sessions", "7",
        "--results-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert proc.returncode == exitcodes.OK, proc.stderr[-2000:]
    doc = load_results(tmp_path / "run" / "results.json").document
    counters = simulator.counters()
    assert counters["creates_accepted"] == 7
    refused = sum(counters["creates_rejected"].values())
    assert doc["totals"]["journeys"] == 7 + refused
    assert counters["live_sessions"] == 0
    assert_key_never_written(proc, tmp_path)


def test_max_sessions_counts_sessions_the_provider_accepted_not_refusals(simulator, tmp_path):
    # Issue 10 (12): fast capacity refusals (which cost nothing) used up the quota.
    simulator.set_faults({"create": {"rate_429": 0.5, "retry_after_s": 0.01}})
    proc = locust(
        *SHORT, "--host", simulator.url, "--max-sessions", "12",
        "--results-dir", str(tmp_path / "run"), "--no-report",
    )  # fmt: skip
    assert proc.returncode == exitcodes.OK, proc.stderr[-2000:]
    doc = load_results(tmp_path / "run" / "results.json").document
    counters = simulator.counters()
    assert counters["creates_accepted"] == doc["totals"]["outcomes"]["ready"] == 12
    assert doc["totals"]["outcomes"]["create_rejected"] > 0
    assert counters["live_sessions"] == 0


def test_a_refused_key_stops_the_run_at_once(simulator, tmp_path):
    # Issue 10 (4, 5): a 401 on every create ran the whole ladder, spending nothing but
    # time, and could end "clean run".  Now: one line, its own exit code, early.
    proc = locust(
        "--ladder", "2,4", "--step-time", "30", "--settle", "0.2", "--poll-interval", "0.01",
        "--host", simulator.url, "--results-dir", str(tmp_path / "run"), "--no-report",
        env={"ANCHOR_API_KEY": "a-wrong-key"},
    )  # fmt: skip
    assert proc.returncode == exitcodes.REFUSED, proc.stderr[-2000:]
    doc = load_results(tmp_path / "run" / "results.json").document
    assert doc["run"]["duration_s"] < 30  # the ladder did not run on
    assert doc["run"]["exit_reason"].startswith("the provider refused the API key (401)")
    refusals = [line for line in proc.stderr.splitlines() if "refused the API key" in line]
    assert refusals and all("Traceback" not in line for line in refusals)
    assert simulator.counters()["creates_accepted"] == 0


def test_a_run_where_no_journey_reached_ready_is_not_clean(simulator, tmp_path):
    # Issue 10 (4): every create rejected read "clean run", exit 0.
    simulator.set_faults({"create": {"rate_5xx": 1.0}})
    proc = locust(*SHORT, "--host", simulator.url, "--results-dir", str(tmp_path / "run"),
                  "--no-report")  # fmt: skip
    assert proc.returncode == exitcodes.NO_READY, proc.stderr[-2000:]
    doc = load_results(tmp_path / "run" / "results.json").document
    assert "no journey reached ready: the create was answered 5" in doc["run"]["exit_reason"]


def test_a_provider_without_the_async_endpoint_is_named(tmp_path):
    # A loopback server that answers 404 to everything, as a provider without
    # POST /v1/sessions/async would.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        proc = locust(*SHORT, "--host", host, "--results-dir", str(tmp_path / "run"),
                      "--no-report")  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == exitcodes.NO_READY, proc.stderr[-2000:]
    reason = load_results(tmp_path / "run" / "results.json").document["run"]["exit_reason"]
    assert "answered 404" in reason and "POST /v1/sessions/async" in reason


class _NotFound(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b'{"error": {"code": 404, "message": "Not found"}}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_protocol_errors_break_the_run(simulator, tmp_path):
    simulator.set_faults({"status": {"rate_malformed": 1.0}})
    proc = locust(*SHORT, "--host", simulator.url, "--results-dir", str(tmp_path / "run"))
    assert proc.returncode == exitcodes.PROTOCOL_ERRORS, proc.stderr[-2000:]
    doc = load_results(tmp_path / "run" / "results.json").document
    assert doc["totals"]["outcomes"]["protocol_error"] > 0
    # The sessions of those journeys were still found and ended.
    simulator.set_faults({})
    assert simulator.counters()["live_sessions"] == 0


def test_sessions_that_cannot_be_ended_are_reported_as_leaked(simulator, tmp_path):
    simulator.set_faults({"delete": {"rate_5xx": 1.0}})
    proc = locust(
        *SHORT, "--host", simulator.url, "--ready-timeout", "2",
        "--results-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert proc.returncode == exitcodes.LEAKED_SESSIONS, proc.stderr[-2000:]
    cleanup = load_results(tmp_path / "run" / "results.json").document["cleanup"]
    assert cleanup["leaked"] > 0
    # Every session the harness reports unended really was never ended by a DELETE:
    # per the ground truth it is still alive or died of its idle timeout.
    truth = {r["session_id"]: r for r in simulator.truth()["requests"] if r["session_id"]}
    reported = set(cleanup["unended_session_ids"]) | set(cleanup["left_alive_ids"])
    assert reported
    for session_id in reported:
        ended = truth[session_id]["ended"]
        assert ended is None or ended["by"] in ("idle_timeout", "max_duration"), ended
    # And no session the simulator still holds alive was missed.
    live = {sid for sid, r in truth.items() if r["ended"] is None and r["outcome"] == "ready"}
    assert live <= reported


def test_explicit_master_and_two_workers(simulator, tmp_path):
    port = free_port()
    out = tmp_path / "run"
    env = {**os.environ, "ANCHOR_API_KEY": KEY}
    with locust_workers(port, tmp_path, key=KEY):
        master = subprocess.run(
            locust_command(
                "--master", "--headless", "--only-summary", "--expect-workers", "2",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--host", simulator.url, *SHORT, "--results-dir", str(out),
            ),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert master.returncode == exitcodes.OK, master.stderr[-3000:]
    doc = load_results(out / "results.json").document
    assert doc["run"]["workers"] == 2
    assert doc["totals"]["invariant_ok"]
    assert_timeline_accounts_for_every_journey(doc)
    counters = simulator.counters()
    truth = simulator.truth()
    tag = f"bench-run-{doc['run']['id']}"
    ours = [r for r in truth["requests"] if tag in r["tags"]]
    assert doc["totals"]["outcomes"]["ready"] == sum(r["outcome"] == "ready" for r in ours) > 0
    assert counters["live_sessions"] == 0
