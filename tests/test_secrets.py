"""No secret leaves the process: the API key and a proxy password are in no file or stream."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from locust_runs import LocustProcess, finish, free_port, locust_workers

from bench.core import exitcodes
from bench.simulator.process import SimulatorProcess

KEY = "canary-key-secrets-0d9e7b"
PASSWORD = "canary-proxy-password-c41f"
pytestmark = pytest.mark.slow


def session_config(tmp_path: Path) -> Path:
    path = tmp_path / "session.json"
    path.write_bytes(
        orjson.dumps(
            {
                "session": {
                    "proxy": {"active": True, "type": "custom", "server": "http://127.0.0.1:9",
                              "username": "user", "password": PASSWORD},
                    "timeout": {"idle_timeout": 5, "max_duration": 25},
                }
            }
        )
    )  # fmt: skip
    return path


def run_args(sim: SimulatorProcess, tmp_path: Path) -> list[str]:
    return [
        "--headless", "--only-summary", "--host", sim.url,
        "--ladder", "2", "--step-time", "2", "--settle", "0.2", "--poll-interval", "0.01",
        "--ready-timeout", "5", "--journey-log", "--session-config", str(session_config(tmp_path)),
        "--results-dir", str(tmp_path / "run"),
        "--csv", str(tmp_path / "csv" / "stats"), "--csv-full-history",
        "--html", str(tmp_path / "html" / "report.html"),
        "--logfile", str(tmp_path / "locust.log"),
    ]  # fmt: skip


def assert_no_secret(tmp_path: Path, *streams: str) -> None:
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    # Every kind of output was really written, so the grep below has something to read.
    names = {p.name for p in files}
    assert {"results.json", "journeys.jsonl", "report.html", "locust.log"} <= names, names
    assert any(n.endswith("_stats.csv") for n in names), names
    for secret in (KEY, PASSWORD):
        for stream in streams:
            assert secret not in stream
        for path in files:
            if path.name == "session.json":
                continue  # the user's own input file
            assert secret.encode() not in path.read_bytes(), path


def assert_redacted(tmp_path: Path) -> None:
    doc = orjson.loads((tmp_path / "run" / "results.json").read_bytes())
    proxy = doc["config"]["session_config"]["session"]["proxy"]
    assert proxy["password"] != PASSWORD
    assert proxy["server"] == "http://127.0.0.1:9"


def test_single_process_run_writes_no_secret(tmp_path):
    with SimulatorProcess("fast", seed=51, truth=True, api_key=KEY) as sim:
        proc = LocustProcess(run_args(sim, tmp_path), key=KEY)
        result = finish(proc, tmp_path / "run")
        # The run created sessions with that config (the target accepted them); the
        # password is then looked for everywhere the run wrote.
        assert sim.counters()["creates_accepted"] > 0
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert_redacted(tmp_path)
    assert_no_secret(tmp_path, result.stdout, result.stderr)


def test_distributed_run_writes_no_secret(tmp_path):
    port = free_port()
    with SimulatorProcess("fast", seed=52, truth=True, api_key=KEY) as sim:
        master = LocustProcess(
            ["--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), *run_args(sim, tmp_path)],
            key=KEY,
        )  # fmt: skip
        with locust_workers(port, tmp_path, key=KEY):
            result = finish(master, tmp_path / "run")
    assert result.code == exitcodes.OK, result.stderr[-2000:]
    assert_redacted(tmp_path)
    assert_no_secret(tmp_path, result.stdout, result.stderr)
