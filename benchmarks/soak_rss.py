"""Soak: the harness's memory over a long run at moderate concurrency (is RSS flat?).

Runs one Locust harness process for --minutes against a separate simulator (so the
target's own growing ground-truth records are not charged to the harness), samples
the RSS of the locust process tree every --sample seconds with psutil, prints each
sample, then a verdict: the least-squares slope of RSS after the warm-up, in MB per
minute.  A script, not a timed test.

    .venv/bin/python benchmarks/soak_rss.py [--minutes 10] [--users 16] [--sample 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "soak-bench-key"
MB = 1024 * 1024
# No slots or rate limit in the way (so every user keeps a journey in flight for the
# whole soak), at the fast profile's time scale.
PROFILE = ROOT / "benchmarks" / "profiles" / "unlimited.toml"
TIME_SCALE = 0.02


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants, bytes (children that vanish are skipped)."""
    total = 0
    for p in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="run length (default 10)")
    parser.add_argument("--users", type=int, default=16, help="concurrency (default 16)")
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds left out of the slope (default 60)")  # fmt: skip
    parser.add_argument("--limit", type=float, default=1.0,
                        help="slope in MB/min above which the verdict is 'growing'")  # fmt: skip
    args = parser.parse_args()
    if args.minutes <= 0 or args.users < 1 or args.sample <= 0:
        parser.error("--minutes and --sample must be > 0, --users >= 1")
    seconds = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        str(PROFILE), time_scale=TIME_SCALE, seed=1, truth=True, api_key=KEY
    ) as sim:
        command = [
            sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles/async_sessions.py"),
            "--headless", "--only-summary", "--host", sim.url,
            "--ladder", str(args.users), "--step-time", str(seconds), "--settle", "5",
            "--poll-interval", str(args.poll_interval), "--ready-timeout", "10",
            "--results-dir", str(Path(tmp) / "run"), "--no-report",
        ]  # fmt: skip
        log = (Path(tmp) / "locust.log").open("w")
        locust = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        proc = psutil.Process(locust.pid)
        samples: list[tuple[float, float]] = []
        begin = time.monotonic()
        print(f"{'elapsed_s':>9} {'rss_mb':>8}", flush=True)
        # Bounded: the run ends itself after `seconds` plus its drain; the margin
        # below only guards against a hung harness.
        deadline = begin + seconds + 120
        while locust.poll() is None and time.monotonic() < deadline:
            elapsed = time.monotonic() - begin
            try:
                rss = tree_rss(proc) / MB
            except psutil.NoSuchProcess:
                break
            samples.append((elapsed, rss))
            print(f"{elapsed:9.0f} {rss:8.1f}", flush=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                locust.wait(timeout=args.sample)
        if locust.poll() is None:
            locust.kill()
        code = locust.wait()
        log.close()
        journeys = sim.counters()["creates_accepted"] if sim.alive() else "?"
    if not samples:
        print("no samples taken", file=sys.stderr)
        return 1
    steady = [(t, v) for t, v in samples if t >= args.warmup] or samples
    slope = slope_per_minute(steady)
    values = [v for _, v in samples]
    verdict = "flat" if abs(slope) <= args.limit else "growing" if slope > 0 else "shrinking"
    print(
        f"locust exit {code}; {journeys} journeys; RSS at start of the steady part "
        f"{steady[0][1]:.1f} MB, max {max(values):.1f} MB, end {values[-1]:.1f} MB; slope after "
        f"{args.warmup:.0f} s: {slope:+.3f} MB/min -> {verdict}"
    )
    return 0 if verdict != "growing" else 1


if __name__ == "__main__":
    raise SystemExit(main())
