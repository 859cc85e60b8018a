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
import time
from pathlib import Path

from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "polls-bench-key"
PROFILE = ROOT / "benchmarks" / "profiles" / "unlimited.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--poll-interval", type=float, default=0.005)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        str(PROFILE), seed=1, truth=True, api_key=KEY
    ) as sim:
        if len(cpus) > 1:
            os.sched_setaffinity(sim.pid, {cpus[1]})
        pin = ["taskset", "-c", str(cpus[0])] if len(cpus) > 1 else []
        locust = subprocess.Popen(
            [
                *pin, sys.executable, "-m", "locust",
                "-f", str(ROOT / "locustfiles/async_sessions.py"),
                "--headless", "--only-summary", "--host", sim.url,
                "--ladder", str(args.users), "--step-time", str(args.seconds),
                "--settle", "2", "--poll-interval", str(args.poll_interval),
                "--results-dir", str(Path(tmp) / "run"), "--no-report",
            ],
            cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Count the polls the simulator answered in the middle of the step: a window
        # that leaves out the ramp-up and the drain, where fewer users poll.
        started = time.monotonic()
        while sim.counters()["polls"] == 0:
            if time.monotonic() - started > 30 or locust.poll() is not None:
                locust.kill()
                print("no status poll reached the simulator within 30 s", file=sys.stderr)
                return 1
            time.sleep(0.1)
        # Leave the ramp-up out: the first journeys' first polls are jittered over an
        # interval and every user starts in the first second.
        time.sleep(min(3.0, args.seconds / 4))
        window = args.seconds / 2
        before, t0 = sim.counters()["polls"], time.monotonic()
        time.sleep(window)
        after, t1 = sim.counters()["polls"], time.monotonic()
        code = locust.wait(timeout=args.seconds + 120)
        doc = json.loads((Path(tmp) / "run" / "results.json").read_bytes())
    step = doc["steps"][0]
    per_s = (after - before) / (t1 - t0)
    print(f"harness exit {code}; {args.users} users, poll interval {args.poll_interval}s")
    print(f"achieved concurrency {step['achieved_concurrency']:.1f}; journeys "
          f"{step['measured']['journeys'] + step['warmup']['journeys']}")  # fmt: skip
    print(f"status polls answered: {after - before} in {t1 - t0:.1f} s mid-step "
          f"= {per_s:,.0f} polls/s from one Locust process on one core")  # fmt: skip
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
