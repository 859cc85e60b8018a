"""How often `bench compare` cries wolf on real runs, and what it finds: the calibration.

Two steps, so comparisons can be re-evaluated after every code change without
running Locust again:

    # 1. real runs of the CI ladder, sequential, kept outside git (one folder per run)
    .venv/bin/python benchmarks/compare_calibration.py run --cache /work/calib-runs \
        --sets base=default,prov10=benchmarks/profiles/calib-provisioning-10.toml --rounds 4

    # 2. every pair, with the default settings and with the CI's
    .venv/bin/python benchmarks/compare_calibration.py evaluate --cache /work/calib-runs

`run` runs each listed set once per round, in the order given (so the baseline's
and the candidates' runs interleave in time and share the machine's moods), with
`bench run --ladder 1,2,4,8 --step-time 15 --settle 3 --no-report` (the CI job's
ladder), each run into CACHE/<set>/<run-id>/.  It appends one line per run to
CACHE/runs.log: when it started, how long it took, its exit code.

`evaluate` loads every run, then compares (see `evaluate --help`):
  * equal pairs: every pair of distinct `base` runs (single runs), and pairs of
    disjoint `--repeat K` sets of base runs (consecutive in time: a set is what
    `bench run --repeat K` would have produced);
  * detection pairs: every base run (or set) against every run (or set) of each
    candidate;
  * semi-synthetic power: one real run of `base` against another whose one metric
    is scaled by 1+s at every level (or whose failures are raised by d points), so
    the run-to-run variance is the machine's own and the change is known exactly;
and prints the share of comparisons that exit 1 (false alarms / detections) per
setting, and per metric and percentile the share of pairs with a `worse` row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LADDER_ARGS = ("--ladder", "1,2,4,8", "--step-time", "15", "--settle", "3")
BENCH = ROOT / ".venv" / "bin" / "bench"


# --- step 1: real runs -----------------------------------------------------------------


def parse_sets(text: str) -> list[tuple[str, str]]:
    sets = []
    for item in text.split(","):
        name, _, profile = item.partition("=")
        if not name or not profile:
            raise SystemExit(f"Error: --sets wants NAME=PROFILE[,NAME=PROFILE...], got {item!r}")
        sets.append((name.strip(), profile.strip()))
    return sets


def run_one(cache: Path, name: str, profile: str, log: Path) -> int:
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    argv = [str(BENCH), "run", *LADDER_ARGS, "--sim-profile", profile, "--no-report",
            "--progress-interval", "0", "--release", name, "--reports-dir", str(cache)]
    with open(cache / f"{name}.out", "a", encoding="utf-8") as out:
        code = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    took = time.perf_counter() - clock
    line = (f"{started.isoformat(timespec='seconds')} {name} profile={profile} "
            f"exit={code} took={took:.0f}s load1={os.getloadavg()[0]:.2f}")
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    print(line, flush=True)
    return code


def cmd_run(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = parse_sets(args.sets)
    for _ in range(args.rounds):
        for name, profile in sets:
            run_one(cache, name, profile, cache / "runs.log")


# --- step 2: comparisons ----------------------------------------------------------------


def load_runs(cache: Path) -> dict[str, list]:
    """set name -> its runs (Results), oldest first; runs that are unreadable are skipped."""
    from bench.record.results import ResultsError, load_results

    sets: dict[str, list] = {}
    for path in sorted(cache.glob("*/*/results.json")):
        try:
            results = load_results(path)
        except ResultsError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        if results.run.get("exit_code") not in (0, None):
            print(f"skipped: {path} (exit code {results.run.get('exit_code')})", file=sys.stderr)
            continue
        sets.setdefault(path.parent.parent.name, []).append(results)
    for runs in sets.values():
        runs.sort(key=lambda r: r.run["started_at"])
    return sets


def groups(runs: Sequence, size: int) -> list[tuple]:
    """Consecutive, disjoint groups of `size` runs (what `--repeat size` would produce)."""
    return [tuple(runs[i:i + size]) for i in range(0, len(runs) - size + 1, size)]


def side(name: str, runs: Iterable):
    from bench.present.compare import Side

    runs = tuple(runs)
    return Side(name, runs, f"{len(runs)} run(s)")


def row_key(row) -> str:
    if row.unit == "us":
        return f"{row.metric} {row.statistic}"
    if row.metric.startswith("outcome:"):
        return "new failure mode"
    return row.metric


REGRESSION_VERDICTS = ("worse", "new failure mode")


class Tally:
    """Comparisons that exit 1, and per row kind the comparisons with a regression row."""

    def __init__(self) -> None:
        self.pairs = 0
        self.exits = 0
        self.kinds: Counter[str] = Counter()
        self.levels: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()

    def add(self, comparison) -> None:
        self.pairs += 1
        self.exits += comparison.exit_code == 1
        flagged = {row_key(r) for r in comparison.rows if r.verdict in REGRESSION_VERDICTS}
        self.kinds.update(flagged)
        self.verdicts.update(r.verdict for r in comparison.rows)
        levels = {f"{row_key(r)} @{r.concurrency or 'all'}"
                  for r in comparison.rows if r.verdict in REGRESSION_VERDICTS}
        self.levels.update(levels)

    def headline(self) -> str:
        rate = self.exits / self.pairs if self.pairs else float("nan")
        return f"exit 1 in {self.exits}/{self.pairs} ({rate * 100:.0f} %)"

    def detail(self, limit: int = 12) -> str:
        if not self.kinds:
            return "no regression row"
        parts = [f"{k} {n}/{self.pairs}" for k, n in self.kinds.most_common(limit)]
        return "; ".join(parts)


def settings_of(args: argparse.Namespace) -> dict[str, object]:
    from bench.present.compare import Thresholds
    from bench.present.compare.limits import load_thresholds

    out: dict[str, object] = {"defaults": Thresholds()}
    for item in args.settings or []:
        name, _, path = item.partition("=")
        out[name] = load_thresholds(Path(path))
    return out


class LeaveOut:
    """The default settings with the noise table re-measured, for each comparison, on the
    base runs that comparison does not use: the shipped table is measured on these very
    runs, so judging a pair with it would be judging it in-sample."""

    def __init__(self, base: Sequence, rule: str = "max") -> None:
        from bench.present.compare.analysis import level_data, run_statistic
        from bench.present.compare.inputs import match_levels
        from bench.present.compare.limits import STATISTICS

        self.base = list(base)
        self.rule = rule
        self.levels = match_levels(self.base, self.base).both
        # run index -> (metric, statistic, level) -> RunStatistic | None
        self.stats: list[dict[tuple[str, str, int], object]] = []
        for results in self.base:
            one = side("x", [results])
            found = {}
            for level in self.levels:
                data = level_data(one, level)
                for metric, runs in data.per_run.items():
                    for statistic in STATISTICS:
                        found[(metric, statistic, level)] = run_statistic(runs[0], statistic)
            self.stats.append(found)
        self.cache: dict[frozenset[int], object] = {}

    def __call__(self, used: Iterable) -> object:
        from bench.analyse.significance import run_effects_from_repeats
        from bench.present.compare import Thresholds
        from bench.present.compare.noise import NoisePrior

        ids = {id(r) for r in used}
        keep = frozenset(i for i, r in enumerate(self.base) if id(r) not in ids)
        if keep not in self.cache:
            table: dict[str, dict[str, float]] = {}
            keys = {(m, s) for (m, s, _) in self.stats[0]}
            for metric, statistic in sorted(keys):
                taus = []
                for level in self.levels:
                    cell = [c for i in keep
                            if (c := self.stats[i].get((metric, statistic, level))) is not None]
                    if len(cell) >= max(2, len(keep) // 2):  # as `noise` does
                        taus.append(run_effects_from_repeats([cell], len(cell) - 1).tau)
                if taus:
                    pooled = max(taus) if self.rule == "max" else sum(taus) / len(taus)
                    table.setdefault(metric, {})[statistic] = pooled
            prior = NoisePrior(tau=table, df=len(keep) - 1, source=f"{len(keep)} other runs")
            self.cache[keep] = Thresholds(noise=prior)
        return self.cache[keep]


_LEVEL_CACHE: dict[tuple[int, int], tuple[object, object]] = {}


def _cache_level_data() -> None:
    """Decode each run's histograms once (a comparison decodes them every time): the
    same LevelData, assembled from per-run pieces kept by run identity."""
    from collections import Counter as _Counter

    import bench.present.compare.analysis as analysis

    fields = getattr(getattr(analysis, "LevelData", None), "__dataclass_fields__", {})
    if getattr(analysis, "_calibration_cache", False) or "outcomes_per_run" not in fields:
        return  # already done, or an older tree's code (left as it was)
    original = analysis.level_data

    def level_data(side_, level):
        per_run: dict[str, list] = {}
        outcomes: _Counter[str] = _Counter()
        each = []
        for run in side_.runs:
            key = (id(run), level)
            if key not in _LEVEL_CACHE:
                _LEVEL_CACHE[key] = (run, original(side("x", [run]), level))
            one = _LEVEL_CACHE[key][1]
            for metric, parts in one.per_run.items():
                per_run.setdefault(metric, []).extend(parts)
            outcomes.update(one.outcomes)
            each.extend(one.outcomes_per_run)
        return analysis.LevelData({m: tuple(v) for m, v in per_run.items()}, dict(outcomes),
                                  tuple(each))

    analysis.level_data = level_data
    analysis._calibration_cache = True


def compare(base, cand, settings):
    from bench.present.compare import compare_sides

    _cache_level_data()
    if callable(settings):
        settings = settings([*base.runs, *cand.runs])
    return compare_sides(base, cand, settings)


def sizes(spec: str) -> tuple[int, int]:
    """'3' -> (3, 3); '3x1' -> a baseline of 3 runs, a candidate of 1."""
    base, _, cand = spec.partition("x")
    return int(base), int(cand or base)


def equal_pairs(runs: Sequence, spec: str) -> list[tuple[tuple, tuple]]:
    """Pairs of disjoint sets of runs of one release (equal sizes: the earlier as baseline)."""
    k_b, k_c = sizes(spec)
    if k_b == k_c:
        return list(itertools.combinations(groups(runs, k_b), 2))
    return [(b, c) for b in groups(runs, k_b) for c in groups(runs, k_c)
            if not {id(r) for r in b} & {id(r) for r in c}]


def detection_pairs(base: Sequence, cand: Sequence, spec: str) -> list[tuple[tuple, tuple]]:
    k_b, k_c = sizes(spec)
    return list(itertools.product(groups(base, k_b), groups(cand, k_c)))


def when(runs: Iterable) -> str:
    starts = sorted(r.run["started_at"] for r in runs)
    return f"{starts[0][:16]} .. {starts[-1][:16]} UTC" if starts else "-"


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.code:
        # Another tree's bench package (e.g. `git archive <commit> bench`): the "before".
        sys.path.insert(0, str(Path(args.code).resolve()))
    started = time.perf_counter()
    cache = Path(args.cache)
    sets = load_runs(cache)
    base = sets.get(args.base, [])
    if len(base) < 2:
        raise SystemExit(f"Error: need at least 2 runs of {args.base!r} in {cache}")
    settings = settings_of(args)
    if args.out_of_sample:
        settings["defaults, noise table out of sample"] = LeaveOut(base)
    repeats = args.repeat.split(",")
    print(f"# bench compare calibration, evaluated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    import bench.present.compare as compare_package

    print(f"code: {Path(compare_package.__file__).parent}")
    print(f"runs in {cache}: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(sets.items())))
    print(f"base runs taken {when(base)}; ladder {' '.join(LADDER_ARGS)}")
    for size in [] if args.power_only else repeats:
        k_b, k_c = sizes(size)
        print(f"\n## baseline {k_b} run(s), candidate {k_c} run(s) (a side's runs are "
              "consecutive in time)")
        pairs = equal_pairs(base, size)
        for name, setting in settings.items():
            tally = Tally()
            for b, c in pairs:
                tally.add(compare(side("baseline", b), side("candidate", c), setting))
            print(f"false alarms [{name}] {len(base)} base runs: {tally.headline()}; "
                  f"{tally.detail()}")
        for cand_name in sorted(sets):
            if cand_name == args.base:
                continue
            pairs = detection_pairs(base, sets[cand_name], size)
            if not pairs:
                continue
            for name, setting in settings.items():
                tally = Tally()
                for b, c in pairs:
                    tally.add(compare(side("baseline", b), side("candidate", c), setting))
                print(f"detected {cand_name} [{name}]: {tally.headline()}; {tally.detail()}")
    if args.power_pairs:
        power(base, settings, repeats, args)
    print(f"\n({time.perf_counter() - started:.0f} s)")


# --- semi-synthetic power: real runs, one metric changed by a known amount ---------------


def scaled(results, metric: str, factor: float):
    """A copy of `results` with every measured `metric` sample multiplied by `factor`."""
    import copy

    from bench.record.recorder import encode_histogram, new_histogram
    from bench.record.results import Results

    doc = copy.deepcopy(dict(results.document))
    for step in doc["steps"]:
        blob = step["measured"]["histograms"].get(metric)
        if blob is None:
            continue
        old = results.histogram(step["index"], metric)
        new = new_histogram()
        for index, count in enumerate(old.counts[: old.counts_len]):
            if count:
                value = old.get_highest_equivalent_value(old.get_value_from_index(index))
                new.record_value(max(1, round(value * factor)), count)
        step["measured"]["histograms"][metric] = encode_histogram(new)
    return Results(document=doc)


def more_failures(results, points: float, rng: random.Random):
    """A copy of `results` where each ready journey failed instead with probability `points`."""
    import copy

    from bench.record.results import Results

    doc = copy.deepcopy(dict(results.document))
    for step in doc["steps"]:
        outcomes = step["measured"]["outcomes"]
        moved = sum(rng.random() < points for _ in range(outcomes.get("ready", 0)))
        outcomes["ready"] = outcomes.get("ready", 0) - moved
        outcomes["failed"] = outcomes.get("failed", 0) + moved
    return Results(document=doc)


POWER_METRICS = ("ready", "queued", "provisioning", "configuring", "failure rate")
SHIFTS = (0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 1.00)
FAILURE_POINTS = (0.01, 0.02, 0.05, 0.10, 0.20)


def power(base: Sequence, settings: dict, repeats: Sequence[str], args) -> None:
    rng = random.Random(args.seed)
    setting_name = args.power_setting
    if setting_name not in settings:
        raise SystemExit(f"Error: --power-setting {setting_name!r} is not one of {list(settings)}")
    setting = settings[setting_name]
    print(f"\n## semi-synthetic power [{setting_name}]: a real base run (set) against another "
          "whose one metric is scaled at every level; share of pairs with a worse row on "
          f"that metric, {args.power_pairs} random pairs per cell")
    for size in repeats:
        k_b, k_c = sizes(size)
        pairs = equal_pairs(base, size)
        if k_b == k_c:  # both orders: either set can be the candidate
            pairs = pairs + [(c, b) for b, c in pairs]
        chosen = rng.sample(pairs, min(args.power_pairs, len(pairs)))
        print(f"baseline {k_b} run(s), candidate {k_c} run(s) ({len(chosen)} of {len(pairs)} "
              "ordered pairs of disjoint sets)")
        for metric in POWER_METRICS:
            grid = FAILURE_POINTS if metric == "failure rate" else SHIFTS
            cells = []
            smallest = None
            for shift in grid:
                found = 0
                for b, c in chosen:
                    # The noise table must not have seen either side's original runs.
                    thresholds = setting([*b, *c]) if callable(setting) else setting
                    if metric == "failure rate":
                        cand = [more_failures(r, shift, rng) for r in c]
                    else:
                        cand = [scaled(r, metric, 1 + shift) for r in c]
                    comparison = compare(side("baseline", b), side("candidate", cand), thresholds)
                    found += any(
                        r.verdict in REGRESSION_VERDICTS
                        and (r.metric == metric or (metric == "failure rate"
                                                     and (r.metric == "failure rate"
                                                          or r.metric.startswith("outcome:"))))
                        for r in comparison.rows
                    )
                rate = found / len(chosen)
                if smallest is None and rate >= 0.8:
                    smallest = shift
                unit = " pts" if metric == "failure rate" else " %"
                cells.append(f"+{shift * 100:g}{unit}: {found}/{len(chosen)}")
            grid_end = f"> +{grid[-1] * 100:g}"
            text = f"+{smallest * 100:g}" if smallest is not None else grid_end
            print(f"  {metric:13s} {'  '.join(cells)}  -> 80 % power at {text}", flush=True)


# --- the noise table: tau per metric and statistic from the base runs ----------------------


def cmd_noise(args: argparse.Namespace) -> None:
    """tau per metric and statistic (the table of bench/present/compare/noise.py)."""
    from bench.analyse.significance import run_effects_from_repeats
    from bench.present.compare.analysis import level_data, run_statistic
    from bench.present.compare.inputs import match_levels
    from bench.present.compare.limits import STATISTICS

    sets = load_runs(Path(args.cache))
    runs = sets[args.base]
    if args.last:
        runs = runs[-args.last:]
    all_side = side("baseline", runs)
    levels = match_levels(runs, runs).both
    data = {level: level_data(all_side, level) for level in levels}
    metrics = sorted({m for r in runs for m in r.metrics()})
    print(f"# tau (log-scale sd of the run effect) from {len(runs)} runs of {args.base!r}, "
          f"taken {when(runs)}; df {len(runs) - 1}")
    print("# per level in brackets (levels where at least half the runs can estimate it);"
          " r: mean correlation of the runs' deviations between levels")
    table: dict[str, dict[str, float]] = {}
    for metric in metrics:
        for statistic in STATISTICS:
            cells, per_level, deviations = [], [], []
            for level in levels:
                # The runs that hold enough samples for the statistic at this level (a
                # run with 5 journeys at concurrency 1 has no median's interval).
                stats = [x for b in data[level].per_run.get(metric, ())
                         if (x := run_statistic(b, statistic)) is not None]
                if len(stats) < max(2, len(runs) // 2):
                    continue
                cells.append(stats)
                one = run_effects_from_repeats([stats], len(stats) - 1)
                per_level.append(f"{level}:{one.tau:.3f}")
                centre = sum(x.log_value for x in stats) / len(stats)
                deviations.append([x.log_value - centre for x in stats])
            if not cells:
                continue
            effects = run_effects_from_repeats(cells, len(runs) - 1)
            taus = [run_effects_from_repeats([c], len(c) - 1).tau for c in cells]
            chosen = max(taus) if args.level_rule == "max" else effects.tau
            table.setdefault(metric, {})[statistic] = round(chosen, 4)
            corr = _mean_correlation(deviations)
            print(f"{metric:13s} {statistic:4s} tau {effects.tau:.4f}  [{' '.join(per_level)}]"
                  f"  r {corr:+.2f}" if corr is not None else
                  f"{metric:13s} {statistic:4s} tau {effects.tau:.4f}  [{' '.join(per_level)}]")
    print(f"DEFAULT_TAU = {{  # {args.level_rule} over levels")
    for metric, per in table.items():
        inner = ", ".join(f'"{k}": {v}' for k, v in per.items())
        print(f'    "{metric}": {{{inner}}},')
    print("}")
    if args.toml:
        lines = ["[noise]", f"df = {len(runs) - 1}",
                 f'source = "{len(runs)} runs of {args.base}, {args.level_rule} over levels"']
        for metric, per in table.items():
            lines += ["", f"[noise.{metric}]"] + [f"{k} = {v}" for k, v in per.items()]
        Path(args.toml).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.toml}")


def _mean_correlation(rows: list[list[float]]) -> float | None:
    import statistics

    pairs = []
    for a, b in itertools.combinations(rows, 2):
        try:
            pairs.append(statistics.correlation(a, b))
        except statistics.StatisticsError:
            continue
    return sum(pairs) / len(pairs) if pairs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="real runs of the CI ladder into the cache")
    p.add_argument("--cache", required=True, help="folder for the runs (outside git)")
    p.add_argument("--sets", required=True,
                   help="NAME=PROFILE,... run once per round in this order (names may repeat)")
    p.add_argument("--rounds", type=int, default=1)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("evaluate", help="compare every pair of cached runs")
    p.add_argument("--cache", required=True)
    p.add_argument("--base", default="base", help="the set of equal runs (default base)")
    p.add_argument("--settings", action="append", metavar="NAME=FILE",
                   help="also evaluate with this comparison thresholds file (repeatable); "
                   "the defaults are always evaluated")
    p.add_argument("--repeat", default="1,3",
                   help="set sizes to evaluate: K (K runs a side) or KxL (K baseline runs, "
                   "L candidate runs), comma-separated (default 1,3)")
    p.add_argument("--power-pairs", type=int, default=0,
                   help="random pairs per cell of the semi-synthetic power table (0: none)")
    p.add_argument("--power-setting", default="defaults")
    p.add_argument("--out-of-sample", action="store_true",
                   help="also judge each pair with the noise table measured on the other "
                   "base runs only (setting 'defaults, noise table out of sample')")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--power-only", action="store_true",
                   help="only the semi-synthetic power table (no pair tables)")
    p.add_argument("--code", default=None, metavar="DIR",
                   help="import bench from DIR instead (e.g. an older commit's tree)")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("noise", help="tau per metric and statistic from the base runs")
    p.add_argument("--cache", required=True)
    p.add_argument("--base", default="base")
    p.add_argument("--last", type=int, default=0, help="only the last N base runs")
    p.add_argument("--level-rule", choices=("max", "pooled"), default="max",
                   help="tau per metric and statistic: the largest level's (default) or "
                   "pooled over levels")
    p.add_argument("--toml", default=None, metavar="FILE",
                   help="also write the table as a thresholds file's [noise] section")
    p.set_defaults(func=cmd_noise)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
