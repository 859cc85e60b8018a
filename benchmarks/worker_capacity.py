"""One worker's real capacity: journeys in flight at a 1 s poll interval, and overhead per poll.

Part 1: how many journeys one Locust process keeps in flight, polling every 1 s,
while its own poll-lag and loop-lag p99 stay at most 20 ms (the issue's bar; the
harness marks a step saturated above a tenth of the interval, 100 ms).  One
single-step run per level (sessions provision for 10 s, so every user always has a
journey in flight), Locust pinned to one core and the simulator to the other; the
figures are each run's measured-part lag p99s from the results file, and its
achieved concurrency (mean journeys in flight).

Part 2: polls per second at saturation, the harness (200 users polling every 5 ms)
against a bare Locust FastHttpUser polling the same simulator endpoint as fast as it
can (benchmarks/bare_poller.py, 200 users), each pinned to the same core, one after
the other in this invocation; polls counted by the simulator in the middle of each
run.

    .venv/bin/python benchmarks/worker_capacity.py [--levels 2000,4000,6000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "capacity-bench-key"
PROFILE = ROOT / "benchmarks" / "profiles" / "long-provisioning.toml"
LAG_LIMIT_US = 20_000


def _pin(sim: SimulatorProcess) -> list[str]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return []
    os.sched_setaffinity(sim.pid, {cpus[1]})
    return ["taskset", "-c", str(cpus[0])]


def _locust(args: list[str], pin: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*pin, sys.executable, "-m", "locust", "--headless", "--only-summary", *args],
        cwd=ROOT, env={**os.environ, "ANCHOR_API_KEY": KEY},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def in_flight(level: int, seconds: float, poll: float) -> tuple[float, int | None, float]:
    """(achieved concurrency, poll-lag p99 in us, loop-lag p99 in us) of one run."""
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        str(PROFILE), seed=1, truth=False, api_key=KEY
    ) as sim:
        out = Path(tmp) / "run"
        proc = _locust(
            ["-f", str(ROOT / "locustfiles/async_sessions.py"), "--host", sim.url,
             "--ladder", str(level), "--step-time", str(seconds), "--settle", "12",
             "--poll-interval", str(poll), "--ready-timeout", "60", "--no-report",
             "--results-dir", str(out)],
            _pin(sim),
        )  # fmt: skip
        proc.wait(timeout=seconds + 300)
        results = load_results(out / "results.json")
    (step,) = results.steps
    # The step's own judgement: p99s over its measured part (the warm-up excluded).
    generator = step["generator"]
    return (
        float(step["achieved_concurrency"]),
        generator["poll_lag_p99_us"],
        float(generator["loop_lag_p99_us"] or 0.0),
    )


def polls_per_second(locustfile: Path, extra: list[str], seconds: float) -> float:
    """Status polls the simulator answered per second, mid-run, for one Locust process."""
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(
        str(PROFILE), seed=1, truth=True, api_key=KEY
    ) as sim:
        proc = _locust(
            ["-f", str(locustfile), "--host", sim.url,
             *[a.replace("{tmp}", tmp) for a in extra]],
            _pin(sim),
        )  # fmt: skip
        started = time.monotonic()
        while sim.counters()["polls"] == 0:
            if time.monotonic() - started > 60 or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"{locustfile.name}: no poll within 60 s")
            time.sleep(0.1)
        time.sleep(seconds / 4)  # past the ramp-up
        before, t0 = sim.counters()["polls"], time.monotonic()
        time.sleep(seconds / 2)
        after, t1 = sim.counters()["polls"], time.monotonic()
        proc.terminate()
        proc.wait(timeout=120)
    return (after - before) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="2000,3000,4000,5000,6000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--skip-ratio", action="store_true")
    args = parser.parse_args()
    if not args.skip_capacity:
        print("| journeys asked | achieved in flight | poll-lag p99 | loop-lag p99 "
              "| both <= 20 ms |")
        print("|---|---|---|---|---|")
        best = 0.0
        for level in (int(x) for x in args.levels.split(",")):
            achieved, lag, loop = in_flight(level, args.seconds, 1.0)
            # Both lags: poll lag alone misses a stall while a reply is read.
            ok = lag is not None and lag <= LAG_LIMIT_US and loop <= LAG_LIMIT_US
            if ok:
                best = max(best, achieved)
            lag_text = "-" if lag is None else f"{lag / 1e3:.1f} ms"
            print(f"| {level} | {achieved:.0f} | {lag_text} | {loop / 1e3:.1f} ms | "
                  f"{'yes' if ok else 'no'} |", flush=True)  # fmt: skip
        print(f"most journeys in flight at 1 s polls with poll- and loop-lag p99 <= 20 ms: "
              f"{best:.0f}")
    if not args.skip_ratio:
        seconds = max(args.seconds, 20.0)
        harness = polls_per_second(
            ROOT / "locustfiles/async_sessions.py",
            ["--ladder", "200", "--step-time", str(seconds), "--settle", "2",
             "--poll-interval", "0.005", "--ready-timeout", "60", "--no-report",
             "--results-dir", "{tmp}/run"],
            seconds,
        )  # fmt: skip
        bare = polls_per_second(
            ROOT / "benchmarks/bare_poller.py",
            ["--users", "200", "--spawn-rate", "200", "--run-time", f"{seconds:g}s"],
            seconds,
        )  # fmt: skip
        print(f"polls/s at saturation, one core: harness {harness:,.0f}, bare FastHttpUser "
              f"{bare:,.0f}, ratio {harness / bare:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
