"""Time `bench report` on a realistic 12-step results file (target: under 3 s).

The file is synthetic but shaped like a real run: a 1..128 ladder of 12
steps, ready times drawn lognormal around the measured ~1.6 s with queueing that
grows with load, every metric recorded, each ready journey's intervals as polls
every 0.25 s would bracket them (so the report estimates queued by Turnbull's
NPMLE, as on a real run), failures rising with concurrency, and a timeline
sampled each second.  Usage:

    .venv/bin/python benchmarks/report_speed.py [--repeat N] [--keep DIR]

It prints the wall time of the `bench report` command (a fresh process: Python
start-up and the matplotlib import included, as a user or CI sees it) and of
build_report alone.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.present.report import build_report
from bench.record.recorder import Recorder
from bench.record.results import StepInfo, build_document, write_results

LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
STEP_S = 60.0
SETTLE_S = 5.0


def _intervals(
    rng: random.Random, changes: tuple[float, float, float]
) -> dict[str, tuple[float, float]]:
    """What polls every 0.25 s from a random phase make of the three changes (us):
    each bracketed by the grid points around it (the create before the first poll)."""
    first = rng.uniform(0, 0.25e6)

    def bracket(t: float) -> tuple[float, float]:
        if t < first:
            return 0.0, first
        k = int((t - first) // 0.25e6)
        return first + k * 0.25e6, first + (k + 1) * 0.25e6

    (q_lo, q_hi), (p_lo, p_hi), (r_lo, r_hi) = (bracket(t) for t in changes)
    return {
        "queued": (q_lo, q_hi),
        "provisioning": (max(0.0, p_lo - q_hi), p_hi - q_lo),
        "configuring": (max(0.0, r_lo - p_hi), r_hi - p_lo),
        "ready": (r_lo, r_hi),
    }


def synthetic_document(seed: int = 4) -> dict:
    rng = random.Random(seed)
    recorder = Recorder()
    infos = []
    samples = []
    t = 0.0
    for index, level in enumerate(LADDER):
        infos.append(StepInfo(index, level, t, t + STEP_S))
        load = level / 32.0  # queueing grows past ~32 concurrent requests
        journeys = min(4000, int(level * STEP_S / 2.0))
        recorder.add_busy(index, level * STEP_S * 0.97)
        for j in range(journeys):
            warmup = j < journeys * SETTLE_S / STEP_S
            recorder.journey_started(index, warmup)
            if rng.random() < 0.002 + 0.03 * load**2:
                outcome = rng.choice([Outcome.FAILED, Outcome.CREATE_REJECTED, Outcome.TIMEOUT])
                result = JourneyResult(outcome, {"create": [rng.lognormvariate(11.5, 0.3)]},
                                       http_status=500 if outcome is Outcome.CREATE_REJECTED
                                       else None)
            else:
                queued = rng.expovariate(1.0) * 0.05e6 * (1 + load**2 * 4)
                prov = rng.lognormvariate(13.8, 0.35)
                conf = rng.lognormvariate(12.6, 0.4)
                ready = queued + prov + conf
                result = JourneyResult(Outcome.READY, {
                    "create": [rng.lognormvariate(11.5, 0.3)],
                    "queued": [queued], "provisioning": [prov], "configuring": [conf],
                    "ready": [ready], "ready_seen": [ready + rng.uniform(0, 0.25e6)],
                    "poll": [rng.lognormvariate(10.8, 0.4) for _ in range(int(ready / 0.25e6))],
                    "release": [rng.lognormvariate(11.0, 0.3)],
                })
                result.intervals = _intervals(rng, (queued, queued + prov, ready))
            recorder.journey_finished(index, warmup, result)
        for second in range(int(STEP_S)):
            rate = journeys / STEP_S
            samples.append({"t_s": t + second + 1.0, "step": index, "target": level,
                            "users": level, "in_flight": round(level * rng.uniform(0.9, 1.0)),
                            "started": int(rate), "ready": int(rate * 0.98),
                            "failed": int(rate * 0.02)})
        t += STEP_S
    run = {
        "id": "report-speed", "release": "synthetic",
        "target": {"kind": "remote", "host": "https://example.invalid"},
        "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T00:12:00+00:00",
        "duration_s": t,
    }
    config = {"poll_interval_s": 0.25, "ladder": list(LADDER), "step_time_s": STEP_S,
              "settle_s": SETTLE_S}
    doc = build_document(run=run, config=config, steps=infos, recorder=recorder, cleanup={})
    # The timeline section (results format 2) is written by the plugin; add one here.
    doc["timeline"] = {"interval_s": 1.0, "samples": samples}
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--keep", type=Path, default=None, help="copy the last report here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="report-speed-"))
    try:
        results = work / "results.json"
        write_results(results, synthetic_document())
        bench = Path(sys.executable).with_name("bench")
        command = [str(bench), "report", str(results), "-o", str(work / "cli")]
        cli_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            cli_times.append(time.perf_counter() - start)
        build_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            build_report([results], work / "api")
            build_times.append(time.perf_counter() - start)
        print(f"12-step results file: {results.stat().st_size / 1e6:.1f} MB")
        print(f"bench report (fresh process): best {min(cli_times):.2f} s, "
              f"median {sorted(cli_times)[len(cli_times) // 2]:.2f} s over {args.repeat}")
        print(f"build_report (in process):    best {min(build_times):.2f} s, "
              f"median {sorted(build_times)[len(build_times) // 2]:.2f} s over {args.repeat}")
        if args.keep:
            shutil.copytree(work / "cli", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
