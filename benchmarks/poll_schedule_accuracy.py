"""Accuracy of the report's ready and phase percentiles, fixed vs adaptive polling, many seeds.

The real driver (bench.measure.driver) and the real simulator model run in virtual
time (tests/virtual_runs.py: greenlets on a heap of wake-ups, no sockets, no
sleeps, a latency drawn per call), so a run is exact and takes a second: what a
single Locust run (benchmarks/harness_accuracy.py) shows once, with the noise of a
shared machine, this shows over many seeds.  Per poll schedule and concurrency:
the mean and the largest |harness - truth| over the seeds, per metric and
percentile, of what the report shows (bench.analyse.intervals on the binned
intervals), the same for the midpoints alone, and the polls per journey.

    .venv/bin/python benchmarks/poll_schedule_accuracy.py [--users 8,32] [--seeds 8]
        [--poll 0.25] [--step-time 120] [--profile default]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from virtual_runs import run

from bench.analyse.intervals import estimate
from bench.core.outcomes import Outcome
from bench.core.polling import Adaptive
from bench.record.censored import bin_interval
from bench.simulator.truth import true_durations

METRICS = ("ready", "queued", "provisioning", "configuring")
QUANTILES = (0.5, 0.9, 0.99)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


def errors(schedule: str, users: int, seeds: int, poll: float, step: float, profile: str):
    report: dict[tuple[str, float], list[float]] = {}
    middles: dict[tuple[str, float], list[float]] = {}
    polls, journeys = [], []
    for seed in range(1, seeds + 1):
        planner = Adaptive(poll) if schedule == "adaptive" else None
        finished = run(profile=profile, poll=poll, users=(users,), step_time=step, seed=seed,
                       planner=planner)
        ready = [f for f in finished if f.result.outcome is Outcome.READY]
        journeys.append(len(ready))
        polls.append(statistics.mean(len(f.journey.poll_calls) for f in ready))
        for metric in METRICS:
            truth = [true_durations(f.truth).get(metric, 0.0) for f in ready]
            counts: dict[tuple[int, int], int] = {}
            for f in ready:
                pair = bin_interval(*f.result.intervals[metric])
                counts[pair] = counts.get(pair, 0) + 1
            est = estimate(counts, QUANTILES)
            mids = [sum(f.result.intervals[metric]) / 2 / 1e6 for f in ready]
            for q in QUANTILES:
                true_q = percentile(truth, q)
                report.setdefault((metric, q), []).append(est.quantiles[q] / 1e6 - true_q)
                middles.setdefault((metric, q), []).append(percentile(mids, q) - true_q)
    return report, middles, statistics.mean(polls), statistics.mean(journeys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="8,32")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--step-time", type=float, default=120.0)
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    print(f"profile {args.profile}, poll {args.poll:g} s, {args.step_time:g} s per run, "
          f"seeds 1..{args.seeds}; |harness - truth| in ms, mean / largest over the seeds; "
          f"goal {args.poll / 4 * 1000:g} ms")
    for users in (int(u) for u in args.users.split(",")):
        for schedule in ("fixed", "adaptive"):
            report, middles, polls, n = errors(schedule, users, args.seeds, args.poll,
                                               args.step_time, args.profile)
            print(f"# {users} users, {schedule}: {n:.0f} ready journeys per run, "
                  f"{polls:.2f} polls per journey")
            for label, table in (("report", report), ("middles", middles)):
                cells = []
                for metric in METRICS:
                    parts = [
                        f"{statistics.mean(abs(e) for e in table[(metric, q)]) * 1000:.0f}/"
                        f"{max(abs(e) for e in table[(metric, q)]) * 1000:.0f}"
                        for q in QUANTILES
                    ]
                    cells.append(f"{metric} {' '.join(parts)}")
                print(f"  {label:>7} (p50 p90 p99)  " + "   ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
