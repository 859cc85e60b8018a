"""A mixed load with every fault on (flaky profile) through the real harness; prints the
simulator's own error count, which must be 0, and what the harness saw.

    .venv/bin/python benchmarks/simulator_mixed_load.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "mixed-load-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="ladder length (5 steps)")
    parser.add_argument("--profile", default="flaky")
    args = parser.parse_args()
    step = args.seconds / 5
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        args.profile, seed=3, truth=True, api_key=KEY
    ) as sim:
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles/async_sessions.py"),
                "--headless", "--only-summary", "--host", sim.url,
                "--ladder", "2,4,8,16,32", "--step-time", str(step), "--settle", "1",
                "--poll-interval", "0.1", "--results-dir", str(Path(tmp) / "run"),
            ],
            cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY}, capture_output=True, text=True,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        counters = sim.counters()
        alive = sim.alive()
        results = json.loads((Path(tmp) / "run" / "results.json").read_bytes())
    print(f"load: {elapsed:.1f} s through the harness (exit {proc.returncode}: "
          f"{results['run']['exit_reason']})")  # fmt: skip
    print(f"simulator errors of its own: {counters['server_errors']}; alive after: {alive}")
    print(f"faults injected: {counters['faults']}")
    accepted, rejected = counters["creates_accepted"], counters["creates_rejected"]
    print(f"creates accepted {accepted}, rejected {rejected}")
    print(f"polls {counters['polls']}; live sessions left {counters['live_sessions']}, "
          f"expired unended {counters['leaked_sessions']}")  # fmt: skip
    print(f"harness outcomes: {results['totals']['outcomes']}")
    return 0 if counters["server_errors"] == 0 and alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
