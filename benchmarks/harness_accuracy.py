"""How close the harness's percentiles are to the truth, per metric, percentile and poll interval.

Runs the real harness (Locust headless, one process and `--processes 2`) against a
simulator with 3 browser slots (so the 4-user step really queues) and compares the
harness's p50/p90/p99 of ready, queued, provisioning and configuring, read from its
HDR histograms, with the same percentiles of the simulator's true durations over
the same journeys.  The tests (tests/test_harness_accuracy.py) assert the bound;
this prints the figures.

    .venv/bin/python benchmarks/harness_accuracy.py [--polls 0.01,0.25] [--step-time 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from bench.analyse.stats import nearest_rank, quantile
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess
from bench.simulator.truth import true_durations

ROOT = Path(__file__).resolve().parent.parent
KEY = "accuracy-bench-key"
PROFILE = ROOT / "tests" / "fixtures" / "profiles" / "accuracy.toml"
METRICS = ("ready", "queued", "provisioning", "configuring")


def measure(profile: Path, poll: float, step_time: float, processes: int | None) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        str(profile), seed=11, truth=True, api_key=KEY
    ) as sim:
        out = Path(tmp) / "run"
        extra = ["--processes", str(processes)] if processes else []
        proc = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles/async_sessions.py"),
                "--headless", "--only-summary", "--host", sim.url, "--ladder", "1,2,4",
                "--step-time", str(step_time), "--settle", "0.5", "--poll-interval", str(poll),
                "--ready-timeout", "10", "--results-dir", str(out), "--journey-log",
                "--no-report", *extra,
            ],
            cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY}, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            return [f"harness exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1]}"]
        results = load_results(out / "results.json")
        truth = {r["request_id"]: r for r in sim.truth()["requests"]}
        journeys = [orjson.loads(line) for line in (out / "journeys.jsonl").read_bytes().split()]
    mode = f"--processes {processes}" if processes else "one process"
    rows = []
    ready = [j for j in journeys if j["outcome"] == "ready" and not j["warmup"]]
    for metric in METRICS:
        true_values = sorted(
            true_durations(truth[j["request_id"]])[metric]
            for j in ready
            if metric in j["samples_us"]
        )
        hist = results.merged(metric)
        for q in (0.5, 0.9, 0.99):
            harness_s = quantile(hist, q) / 1e6
            true_s = true_values[nearest_rank(q, len(true_values)) - 1]
            rows.append(
                f"{mode:>13} {poll:>6g} {metric:>13} p{q * 100:g} {len(true_values):>5} "
                f"{harness_s * 1000:>9.1f} {true_s * 1000:>9.1f} "
                f"{(harness_s - true_s) * 1000:>+8.1f} {(poll / 2 + 0.010) * 1000:>9.1f}"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", default="0.01,0.25", help="poll intervals, seconds")
    parser.add_argument("--step-time", type=float, default=4.0)
    args = parser.parse_args()
    print(f"{'mode':>13} {'poll':>6} {'metric':>13} {'q':>3} {'n':>5} {'harness ms':>9} "
          f"{'truth ms':>9} {'diff ms':>8} {'bound ms':>9}")  # fmt: skip
    for poll in (float(p) for p in args.polls.split(",")):
        for processes in (None, 2):
            for row in measure(PROFILE, poll, args.step_time, processes):
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
