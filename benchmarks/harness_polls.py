"""Status polls per second that one harness process (one Locust worker) sustains.

The simulator runs on CPU 1 with room for every session and no rate limit; Locust
runs on CPU 0 with many users polling as fast as they can, so the figure is the
load generator's limit, not the target's.

    .venv/bin/python benchmarks/harness_polls.py [--users 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "polls-bench-key"
PROFILE = """
extends = "default"
description = "polls benchmark: no capacity or rate limits"
[capacity]
max_concurrent_browsers = 100000
max_queue = 100000
queue_retry_after_s = 1.0
[rate_limit]
creates_per_s = 0.0
burst = 1
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--poll-interval", type=float, default=0.005)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "polls.toml"
        profile.write_text(PROFILE)
        with SimulatorProcess(str(profile), seed=1, truth=True, api_key=KEY) as sim:
            if len(cpus) > 1:
                os.sched_setaffinity(sim.pid, {cpus[1]})
            pin = ["taskset", "-c", str(cpus[0])] if len(cpus) > 1 else []
            proc = subprocess.run(
                [
                    *pin, sys.executable, "-m", "locust",
                    "-f", str(ROOT / "locustfiles/async_sessions.py"),
                    "--headless", "--only-summary", "--host", sim.url,
                    "--ladder", str(args.users), "--step-time", str(args.seconds),
                    "--settle", "2", "--poll-interval", str(args.poll_interval),
                    "--results-dir", str(Path(tmp) / "run"),
                ],
                cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY},
                capture_output=True, text=True,
            )  # fmt: skip
        doc = json.loads((Path(tmp) / "run" / "results.json").read_bytes())

    step = doc["steps"][0]
    from bench.recorder import decode_histogram

    polls = 0
    for part in ("measured", "warmup"):
        encoded = step[part]["histograms"].get("poll")
        if encoded:
            polls += decode_histogram(encoded).get_total_count()
    per_s = polls / step["duration_s"]
    interval = args.poll_interval
    print(f"harness exit {proc.returncode}; {args.users} users, poll interval {interval}s")
    print(f"achieved concurrency {step['achieved_concurrency']:.1f}; journeys "
          f"{step['measured']['journeys'] + step['warmup']['journeys']}")  # fmt: skip
    print(f"status polls: {polls} in {step['duration_s']:.1f} s = {per_s:,.0f} polls/s on one core")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
