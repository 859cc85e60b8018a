"""The open model's schedule keeping: how late journeys start against their arrival times.

One open-model ladder against the embedded simulator (calibrated default profile,
real time): per step, the arrivals offered, dropped and started, the start lag
(actual create send minus scheduled arrival) p50 / p99 / max from the results
file's `start_lag` histograms (measured and warm-up parts), and a Little's-law
check from independent records: the mean of the timeline's in-flight samples in
the step against ready sessions per second x (mean ready_seen + mean release).
The report folder's plots are the README's open-model pictures.

    .venv/bin/python benchmarks/open_model.py [--rates 2,4,8,16,32] [--step-time 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.record.recorder import new_histogram
from bench.record.results import PARTS, load_results

ROOT = Path(__file__).resolve().parent.parent


def _mean(results: object, index: int, metric: str) -> float:
    """Seconds: the metric's mean over both parts of a step."""
    hist = new_histogram()
    for part in PARTS:
        found = results.histogram(index, metric, part)  # type: ignore[attr-defined]
        if found is not None:
            hist.add(found)
    return hist.get_mean_value() / 1e6 if hist.get_total_count() else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="2,4,8,16,32")
    parser.add_argument("--step-time", default="20")
    parser.add_argument("--max-in-flight", default="100")
    parser.add_argument("--arrivals", default="constant")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "open-model")
    args = parser.parse_args()
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles/async_sessions.py"),
         "--headless", "--only-summary", "--arrival-rate", args.rates,
         "--arrivals", args.arrivals, "--max-in-flight", args.max_in_flight,
         "--step-time", args.step_time, "--settle", "3", "--results-dir", str(args.out)],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    print(f"harness exit {proc.returncode}; report: {args.out / 'report.html'}")
    results = load_results(args.out / "results.json")
    print("| arrivals/s | offered | dropped | start lag p50 | p99 | max | in flight (timeline) "
          "| ready/s x W |")
    print("|---|---|---|---|---|---|---|---|")
    for step in results.steps:
        lag = new_histogram()
        for part in PARTS:
            hist = results.histogram(step["index"], "start_lag", part)
            if hist is not None:
                lag.add(hist)
        offered = sum(step[p]["journeys"] for p in PARTS)
        dropped = sum(step[p]["outcomes"]["dropped"] for p in PARTS)
        samples = [s["in_flight"] for s in results.document["timeline"]["samples"]
                   if s["step"] == step["index"]]  # fmt: skip
        in_flight = sum(samples) / len(samples) if samples else 0.0
        ready_per_s = sum(step[p]["outcomes"]["ready"] for p in PARTS) / step["duration_s"]
        w = sum(_mean(results, step["index"], m) for m in ("ready_seen", "release"))
        ms = [lag.get_value_at_percentile(q) / 1e3 for q in (50, 99)]
        print(f"| {step['arrival_rate']:g} | {offered} | {dropped} | {ms[0]:.2f} ms | "
              f"{ms[1]:.2f} ms | {lag.get_max_value() / 1e3:.2f} ms | {in_flight:.1f} | "
              f"{ready_per_s * w:.1f} |")  # fmt: skip
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
