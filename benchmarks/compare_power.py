"""The comparison's test on synthetic samples: its calibration, and its power when its model holds.

    .venv/bin/python benchmarks/compare_power.py [--seeds 200] [--power-seeds 30]

Synthetic runs draw every sample from one fixed distribution: they have no run effect,
so these figures say how the *test* behaves when its model holds, with no run-to-run
noise assumed (the noise prior set to zero).  What comparisons of real runs do (run-to-
run noise, the shipped noise model) is measured by benchmarks/compare_calibration.py;
docs/compare.md keeps both.

(a) False alarms: same-distribution pairs (4 levels x 3 metrics, alpha 0.05 with Holm,
    10 % threshold): the share of comparisons that exit 1, and each statistic's raw
    per-row rejection rate at p <= 0.05 (a calibrated test sits near 0.05).
(b) Power: the share of comparisons with a `worse` row on `ready`, and the smallest
    change found with >= 80 % power, for
    - one cell: `ready` x(1+s) at concurrency 8 only (every other cell unchanged);
    - eight cells: `ready` and `provisioning` x(1+s) at all four levels;
    - tail only: `ready` above its median stretched so that its p99 moves by s, counted
      when found through a p99 row, then through any row;
    at per-level sample sizes from the CI ladder's (6-44 journeys per level) upwards.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.present.compare import Side, Thresholds, compare_sides  # noqa: E402
from bench.present.compare.noise import NoisePrior  # noqa: E402
from bench.present.compare.synthetic import READY_MEDIAN_US as MEDIAN  # noqa: E402
from bench.present.compare.synthetic import ready_times, synthetic_results  # noqa: E402

LEVELS = (1, 2, 4, 8)
SIZES = (50, 200, 1000, 4000)
POWER_SIZES = (10, 44, 100, 400, 1000, 4000)
SHIFTS = (0.05, 0.10, 0.15, 0.20, 0.30, 0.50)
# No run effect in synthetic runs: the test alone, with no run-to-run noise assumed.
SETTINGS = Thresholds(noise=NoisePrior(tau={}, df=math.inf, source="none (synthetic)"))
ONE_CELL = frozenset({(8, "ready")})
ALPHAS = (0.05, 0.01, 0.001)
READY_CELLS = frozenset((level, "ready") for level in LEVELS)


def tail_for_p99_shift(shift: float) -> float:
    """Stretch above the median that moves the p99 by `shift` (lognormal sigma 0.3)."""
    p99 = 1_000_000.0 + 500_000.0 * math.exp(0.3 * 2.3263)
    return ((1 + shift) * p99 - MEDIAN) / (p99 - MEDIAN)


def side(rng: random.Random, n: int, scale: float = 1.0, tail: float = 1.0, name: str = "x",
         cells: frozenset[tuple[int, str]] | None = None) -> Side:
    """One run; `scale` and `tail` apply to the (level, metric) `cells` (None: ready and
    provisioning at every level)."""

    def times(level: int, metric: str) -> list[float]:
        changed = cells is None or (level, metric) in cells
        return ready_times(rng, n, scale if changed else 1.0, tail if changed else 1.0)

    data = {
        level: {
            "ready": times(level, "ready"),
            "provisioning": times(level, "provisioning"),
            "poll": [3_000.0 + rng.expovariate(1 / 500.0) for _ in range(n)],
        }
        for level in LEVELS
    }
    return Side(name, (synthetic_results(data, run_id=name),), name)


def false_alarms(seeds: int) -> None:
    print(f"(a) false alarms: {seeds} same-distribution pairs per size, {len(LEVELS)} levels")
    for n in SIZES:
        alarms = 0
        raw: dict[str, list[int]] = {}  # statistic -> [hits at .05, .01, .001, tests]
        rows = 0
        for seed in range(seeds):
            rng = random.Random(seed * 7919 + n)
            c = compare_sides(side(rng, n, name="b"), side(rng, n, name="c"), SETTINGS)
            alarms += c.regression
            rows = c.family_size
            for r in c.rows:
                if r.p_value is None:
                    continue
                kind = r.statistic if r.unit == "us" else r.metric.split(":")[0]
                hits = raw.setdefault(kind, [0, 0, 0, 0])
                for i, level in enumerate(ALPHAS):
                    hits[i] += r.p_value <= level
                hits[3] += 1
        sd = math.sqrt(0.05 * 0.95 / seeds)
        calibration = "; ".join(
            f"{k} " + "/".join(f"{h[i] / h[3]:.4f}" for i in range(3)) + f" of {h[3]}"
            for k, h in sorted(raw.items())
        )
        print(
            f"  n={n:5d}/level: exit 1 in {alarms}/{seeds} = {alarms / seeds:.3f} "
            f"(binomial sd at 0.05: {sd:.3f}); {rows} rows tested; raw per-row rejections "
            f"at p <= 0.05/0.01/0.001: {calibration}", flush=True,
        )


def power(seeds: int) -> None:
    print(f"(b) power: share of {seeds} comparisons with a worse `ready` row")
    cases = (
        ("one cell: ready x(1+s) at concurrency 8", "scale", ONE_CELL, None),
        ("eight cells: ready and provisioning x(1+s) at every level", "scale", None, None),
        ("tail only: ready's p99 x(1+s), median unchanged; found through a p99 row", "tail",
         READY_CELLS, "p99"),
        ("tail only: the same; found through any row", "tail", READY_CELLS, None),
    )
    for label, kind, cells, through in cases:
        print(f"  {label}:")
        for n in POWER_SIZES:
            found_at = None
            line = []
            for shift in SHIFTS:
                hits = 0
                for seed in range(seeds):
                    rng = random.Random(seed * 104729 + n)
                    if kind == "scale":
                        cand = side(rng, n, scale=1 + shift, name="c", cells=cells)
                    else:
                        cand = side(rng, n, tail=tail_for_p99_shift(shift), name="c",
                                    cells=cells)
                    result = compare_sides(side(rng, n, name="b"), cand, SETTINGS)
                    hits += any(
                        r.verdict == "worse" and r.metric == "ready"
                        and (through is None or r.statistic == through)
                        for r in result.rows
                    )
                rate = hits / seeds
                line.append(f"{shift * 100:.0f}%:{rate:.2f}")
                if found_at is None and rate >= 0.8:
                    found_at = shift
            beyond = f"> {SHIFTS[-1] * 100:.0f} %"
            smallest = f"{found_at * 100:.0f} %" if found_at is not None else beyond
            print(f"    n={n:5d}/level  {'  '.join(line)}  -> 80 % power at {smallest}",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="pairs per size for (a)")
    parser.add_argument("--power-seeds", type=int, default=30, help="pairs per cell for (b)")
    args = parser.parse_args()
    started = time.perf_counter()
    false_alarms(args.seeds)
    power(args.power_seeds)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
