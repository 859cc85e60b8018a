"""How often `bench compare` cries wolf, and the smallest regression it catches.

    .venv/bin/python benchmarks/compare_power.py [--seeds 200] [--power-seeds 40] [--real 0]

(a) False-alarm rate: same-distribution synthetic pairs (4 levels x 3 metrics, default
    thresholds: alpha 0.05 with Holm, 10 % threshold); the share of comparisons that
    exit 1, plus each test's raw per-row rejection rate (calibration: near or below alpha).
    With --real N, also N pairs of real Locust runs of the fast simulator profile.
(b) Power: candidates whose ready/provisioning times are scaled by 1+s (whole
    distribution), or whose tail alone is stretched so that p99 moves by s; the share
    of comparisons that exit 1, and the smallest s detected with >= 80 % power, for
    per-level sample sizes typical of short runs (a 30 s step of the default profile at
    concurrency 1-8 holds ~15-125 journeys; the time-scaled test runs hold ~200-2000).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.present.compare import Side, Thresholds, compare_paths, compare_sides  # noqa: E402
from bench.present.compare.synthetic import READY_MEDIAN_US as MEDIAN  # noqa: E402
from bench.present.compare.synthetic import ready_times, synthetic_results  # noqa: E402

LEVELS = (1, 2, 4, 8)
SIZES = (50, 200, 1000, 4000)
SHIFTS = (0.05, 0.10, 0.15, 0.20, 0.30, 0.50)


def tail_for_p99_shift(shift: float) -> float:
    """Stretch above the median that moves the p99 by `shift` (lognormal sigma 0.3)."""
    p99 = 1_000_000.0 + 500_000.0 * math.exp(0.3 * 2.3263)
    return ((1 + shift) * p99 - MEDIAN) / (p99 - MEDIAN)


def side(rng: random.Random, n: int, scale: float = 1.0, tail: float = 1.0, name: str = "x"):
    data = {
        level: {
            "ready": ready_times(rng, n, scale, tail),
            "provisioning": ready_times(rng, n, scale, tail),
            "poll": [3_000.0 + rng.expovariate(1 / 500.0) for _ in range(n)],
        }
        for level in LEVELS
    }
    return Side(name, (synthetic_results(data, run_id=name),), name)


def false_alarms(seeds: int) -> None:
    print(f"(a) false alarms: {seeds} same-distribution pairs per size, {len(LEVELS)} levels")
    settings = Thresholds()
    for n in SIZES:
        alarms = 0
        raw: dict[str, list[int]] = {}
        rows = 0
        for seed in range(seeds):
            rng = random.Random(seed * 7919 + n)
            c = compare_sides(side(rng, n, name="b"), side(rng, n, name="c"), settings)
            alarms += c.regression
            rows = c.family_size
            for r in c.rows:
                if r.p_value is None:
                    continue
                kind = r.statistic if r.unit == "us" else r.metric.split(":")[0]
                hits = raw.setdefault(kind, [0, 0])
                hits[0] += r.p_value <= settings.alpha
                hits[1] += 1
        sd = math.sqrt(0.05 * 0.95 / seeds)
        calibration = ", ".join(f"{k} {h / t:.3f}" for k, (h, t) in sorted(raw.items()))
        print(
            f"  n={n:5d}/level: exit 1 in {alarms}/{seeds} = {alarms / seeds:.3f} "
            f"(binomial sd at 0.05: {sd:.3f}); {rows} rows; raw per-row p<=0.05: {calibration}"
        )


def power(seeds: int) -> None:
    print(f"(b) power: share of {seeds} comparisons that exit 1 (default thresholds)")
    settings = Thresholds()
    for kind in ("scale", "tail"):
        label = "whole distribution x(1+s)" if kind == "scale" else "tail only, p99 x(1+s)"
        print(f"  {label}:")
        for n in SIZES:
            found = None
            line = []
            for shift in SHIFTS:
                hits = 0
                for seed in range(seeds):
                    rng = random.Random(seed * 104729 + n)
                    if kind == "scale":
                        cand = side(rng, n, scale=1 + shift, name="c")
                    else:
                        cand = side(rng, n, tail=tail_for_p99_shift(shift), name="c")
                    hits += compare_sides(side(rng, n, name="b"), cand, settings).regression
                rate = hits / seeds
                line.append(f"{shift * 100:.0f}%:{rate:.2f}")
                if found is None and rate >= 0.8:
                    found = shift
            beyond = f"> {SHIFTS[-1] * 100:.0f} %"
            smallest = f"{found * 100:.0f} %" if found is not None else beyond
            print(f"    n={n:5d}/level  {'  '.join(line)}  -> 80 % power at {smallest}")


def real_pairs(pairs: int) -> None:
    """Pairs of real short Locust runs of the same profile (the e2e test's settings)."""
    args = ["--ladder", "4", "--step-time", "5", "--settle", "0.5", "--poll-interval", "0.01",
            "--ready-timeout", "5", "--sim-time-scale", "0.05", "--sim-profile", "fast"]
    machine_bound = "".join(
        f"[metrics.{m}]\nthreshold = 10.0\n" for m in ("create", "poll", "release", "queued")
    )
    env = {**os.environ, "ANCHOR_API_KEY": "compare-power-key"}
    alarms = alarms_default = 0
    with tempfile.TemporaryDirectory() as tmp:
        thresholds = Path(tmp) / "t.toml"
        thresholds.write_text(machine_bound)
        for i in range(pairs):
            paths = []
            for j in range(2):
                out = Path(tmp) / f"p{i}-{j}"
                subprocess.run(
                    [sys.executable, "-m", "locust", "-f",
                     str(ROOT / "locustfiles" / "async_sessions.py"), "--headless",
                     "--only-summary", *args, "--results-dir", str(out)],
                    cwd=ROOT, env=env, capture_output=True, check=True, timeout=120,
                )  # fmt: skip
                paths.append(out / "results.json")
            alarms += compare_paths(paths[0], paths[1], None, thresholds=thresholds).regression
            alarms_default += compare_paths(paths[0], paths[1], None).regression
    print(
        f"(a') real run pairs (fast profile, 5 s at concurrency 4): exit 1 in {alarms}/{pairs} "
        f"with machine-bound metrics excused, {alarms_default}/{pairs} with default thresholds"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="pairs per size for (a)")
    parser.add_argument("--power-seeds", type=int, default=40, help="pairs per cell for (b)")
    parser.add_argument("--real", type=int, default=0, help="real Locust run pairs for (a)")
    args = parser.parse_args()
    started = time.perf_counter()
    false_alarms(args.seeds)
    power(args.power_seeds)
    if args.real:
        real_pairs(args.real)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
