"""bench compare on synthetic results: verdicts, thresholds, inputs, outputs, CLI exit codes.

Golden Markdown: tests/fixtures/compare/golden.md.  After an intended change of the
output, regenerate it with

    BENCH_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_compare.py -k golden

and review the diff like code.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import orjson
import pytest

from bench.cli import main
from bench.core import exitcodes
from bench.present.compare import (
    CompareError,
    Side,
    Thresholds,
    compare_paths,
    compare_sides,
    render_markdown,
)
from bench.present.compare.analysis import (
    BETTER,
    NEW_FAILURE_MODE,
    NOT_COMPARABLE,
    NOT_SIGNIFICANT,
    UNCHANGED,
    WORSE,
)
from bench.present.compare.limits import parse_thresholds
from bench.present.compare.synthetic import ready_times, synthetic_results
from bench.record.results import dumps

FIXTURES = Path(__file__).parent / "fixtures" / "compare"
GOLDEN = FIXTURES / "golden.md"


def run(rng: random.Random, n: int, levels=(1, 4), run_id: str = "r", **kwargs):
    scale = kwargs.pop("scale", 1.0)
    tail = kwargs.pop("tail", 1.0)
    data = {
        level: {
            "ready": ready_times(rng, n, scale, tail),
            "provisioning": ready_times(rng, n, scale, tail),
            "poll": [3_000.0 + rng.expovariate(1 / 500.0) for _ in range(n)],
        }
        for level in levels
    }
    return synthetic_results(data, run_id=run_id, release=run_id, **kwargs)


def compare(base, cand, thresholds: Thresholds | None = None):
    b = base if isinstance(base, tuple) else (base,)
    c = cand if isinstance(cand, tuple) else (cand,)
    return compare_sides(Side("baseline", b, "b"), Side("candidate", c, "c"),
                         thresholds or Thresholds())


def row(comparison, level, metric, statistic):
    [found] = [
        r for r in comparison.rows
        if (r.concurrency, r.metric, r.statistic) == (level, metric, statistic)
    ]
    return found


# --- verdicts -------------------------------------------------------------------------------


def test_plus_20_percent_p99_shift_with_enough_samples_is_a_regression():
    rng = random.Random(1)
    base = run(rng, 4000, run_id="base")
    cand = run(rng, 4000, run_id="cand", tail=1.8)  # p99 +20 %, median unchanged
    result = compare(base, cand)
    p99 = row(result, 4, "ready", "p99")
    assert p99.delta == pytest.approx(0.2, abs=0.06)
    assert p99.verdict == WORSE
    assert row(result, 4, "ready", "p50").verdict == UNCHANGED
    assert result.exit_code == exitcodes.REGRESSION
    assert "| 4 | ready | p99 |" in render_markdown(result)


def test_same_distribution_twice_is_not_a_regression():
    rng = random.Random(2)
    result = compare(run(rng, 4000, run_id="a"), run(rng, 4000, run_id="b"))
    assert result.exit_code == exitcodes.OK
    assert not result.regressions
    assert {r.verdict for r in result.rows} <= {UNCHANGED, NOT_SIGNIFICANT}


def test_a_faster_candidate_is_better_and_exits_0():
    rng = random.Random(3)
    result = compare(run(rng, 2000), run(rng, 2000, scale=0.8))
    assert row(result, 1, "ready", "p50").verdict == BETTER
    assert result.exit_code == exitcodes.OK


def test_change_below_the_threshold_is_unchanged_even_when_significant():
    rng = random.Random(4)
    result = compare(run(rng, 20000, levels=(1,)), run(rng, 20000, levels=(1,), scale=1.05))
    mean = row(result, 1, "ready", "mean")
    assert mean.adjusted_p < 1e-6 and mean.verdict == UNCHANGED
    # ... and a stricter threshold for that row makes it a regression.
    strict = parse_thresholds({"metrics": {"ready": {"mean": 0.03}}})
    assert row(compare(*_slower_pair(20000), strict), 1, "ready", "mean").verdict == WORSE


def _slower_pair(n: int):
    rng = random.Random(4)
    return run(rng, n, levels=(1,)), run(rng, n, levels=(1,), scale=1.05)


def test_big_change_on_few_samples_is_not_significant():
    rng = random.Random(5)
    result = compare(run(rng, 8, levels=(1,)), run(rng, 8, levels=(1,), scale=1.15))
    assert row(result, 1, "ready", "p50").verdict in (NOT_SIGNIFICANT, UNCHANGED)
    assert result.exit_code == exitcodes.OK
    # Too few samples for a distribution-free p99 interval: shown without one.
    assert row(result, 1, "ready", "p99").baseline_ci is None


def test_new_failure_mode_is_a_regression_when_significant():
    rng = random.Random(6)
    base = run(rng, 3000, levels=(1,))
    cand = run(rng, 3000, levels=(1,), outcomes={1: {"timeout": 40}})
    result = compare(base, cand)
    [new] = [r for r in result.rows if r.metric == "outcome:timeout"]
    assert new.verdict == NEW_FAILURE_MODE
    assert result.exit_code == exitcodes.REGRESSION
    # One timeout in 3000 is no evidence of anything.
    few = compare(base, run(rng, 3000, levels=(1,), outcomes={1: {"timeout": 1}}))
    assert [r.verdict for r in few.rows if r.metric == "outcome:timeout"] == [NOT_SIGNIFICANT]
    assert few.exit_code == exitcodes.OK


def test_failure_rate_rise_is_worse():
    rng = random.Random(7)
    base = run(rng, 3000, levels=(1,), outcomes={1: {"failed": 30}})
    cand = run(rng, 3000, levels=(1,), outcomes={1: {"failed": 200}})
    rate = row(compare(base, cand), 1, "failure rate", "rate")
    assert rate.delta == pytest.approx(200 / 3200 - 30 / 3030)
    assert rate.verdict == WORSE


def test_levels_matched_by_concurrency_and_unmatched_ones_reported():
    rng = random.Random(8)
    result = compare(run(rng, 200, levels=(1, 2, 4)), run(rng, 200, levels=(2, 4, 8)))
    levels = {r.concurrency for r in result.rows if r.metric == "ready"}
    assert levels == {2, 4}
    lonely = {(r.concurrency, r.note) for r in result.rows if r.metric == "(level)"}
    assert lonely == {(1, "measured in the baseline only"), (8, "measured in the candidate only")}
    assert all(r.verdict == NOT_COMPARABLE for r in result.rows if r.metric == "(level)")


def test_metric_missing_on_one_side_is_not_comparable():
    rng = random.Random(9)
    base = synthetic_results({1: {"ready": ready_times(rng, 50), "queued": [10.0] * 50}})
    cand = synthetic_results({1: {"ready": ready_times(rng, 50)}})
    queued = row(compare(base, cand), 1, "queued", "p50")
    assert queued.verdict == NOT_COMPARABLE and "candidate" in queued.note


def test_across_runs_mode_with_enough_runs_per_side():
    rng = random.Random(10)
    base = tuple(run(rng, 300, levels=(1,), run_id=f"b{i}") for i in range(6))
    cand = tuple(run(rng, 300, levels=(1,), run_id=f"c{i}", scale=1.3) for i in range(6))
    result = compare(base, cand)
    # 1 level x 3 metrics x 4 statistics + failure rows = 14 rows; 2 / C(12, 6) = 0.0022
    # <= 0.05 / 14 but 2 / C(10, 5) = 0.0079 is not: 6 runs per side are needed.
    assert result.mode == "runs" and result.min_runs == 6
    p50 = row(result, 1, "ready", "p50")
    assert "6+6 runs" in p50.method
    assert p50.verdict == WORSE  # fully separated: exact p = 2/924, x14 rows (Holm) = 0.03
    same = compare(base, tuple(run(rng, 300, levels=(1,), run_id=f"s{i}") for i in range(6)))
    assert same.exit_code == exitcodes.OK
    five = compare(base[:5], cand[:5])
    assert five.mode == "pooled"


def test_two_runs_per_side_are_pooled_with_a_note():
    rng = random.Random(11)
    base = tuple(run(rng, 200, levels=(1,), run_id=f"b{i}") for i in range(2))
    cand = tuple(run(rng, 200, levels=(1,), run_id=f"c{i}") for i in range(2))
    result = compare(base, cand)
    assert result.mode == "pooled"
    assert row(result, 1, "ready", "p50").n_baseline == 400
    assert any("pooled" in n for n in result.notes)


def test_run_level_false_alarm_rate_stays_below_alpha():
    """Whole comparisons of same-distribution pairs: Holm keeps P(any regression) <= alpha.

    40 seeds x ~26 tested rows, with a zero threshold so that significance alone
    decides (the harshest case); without the correction the run-level false-alarm rate
    would be far above 5 %.  Allow alpha + 3 binomial sd.
    """
    alpha, seeds = 0.05, 40
    settings = Thresholds(alpha=alpha, threshold=0.0, failure_rate=0.0)
    alarms = 0
    uncorrected = 0
    for seed in range(seeds):
        rng = random.Random(1000 + seed)
        result = compare(run(rng, 150), run(rng, 150), settings)
        alarms += result.regression
        uncorrected += any(
            r.p_value is not None and r.p_value <= alpha and r.delta is not None and r.delta > 0
            for r in result.rows
        )
    limit = alpha + 3 * math.sqrt(alpha * (1 - alpha) / seeds)
    assert alarms / seeds <= limit
    # The correction is doing real work here: without it, false alarms are common.
    assert uncorrected / seeds > limit


# --- thresholds file ------------------------------------------------------------------------


def test_thresholds_file_round_trip(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'alpha = 0.01\nthreshold = 0.2\nfailure_rate = 0.005\n'
        '[metrics.ready]\np99 = 0.3\nthreshold = 0.15\n'
        '[metrics.poll]\nthreshold = 1.0\n'
        '[slo]\nready_limit_s = 5\n'
    )
    from bench.present.compare.limits import load_thresholds

    t = load_thresholds(path)
    assert (t.alpha, t.threshold, t.failure_rate) == (0.01, 0.2, 0.005)
    assert t.for_row("ready", "p99") == 0.3
    assert t.for_row("ready", "p50") == 0.15
    assert t.for_row("poll", "mean") == 1.0
    assert t.for_row("create", "p50") == 0.2
    assert t.slo.ready_limit_s == 5.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("alpha = 0.7", "alpha: must be in (0, 0.5]"),
        ("alpha = 'x'", "alpha: expected a number"),
        ("threshold = -1", "threshold: must be in [0, 10]"),
        ("thresholds = 0.1", "unknown key 'thresholds'"),
        ("[metrics.readyy]\np99 = 0.1", "metrics.readyy: unknown metric"),
        ("[metrics.ready]\np95 = 0.1", "unknown key 'p95'"),
        ("[metrics.ready]\np99 = true", "metrics.ready.p99: expected a number"),
        ("[slo]\nready_limit_s = 0", "slo.ready_limit_s: must be in (0"),
        ("[slo]\nlimit = 1", "slo: unknown key 'limit'"),
        ("metrics = 3", "metrics must be a table"),
        ("alpha = ", "is not valid TOML"),
    ],
)
def test_bad_thresholds_are_one_line_errors(tmp_path, text, needle):
    from bench.present.compare.limits import load_thresholds

    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(CompareError) as info:
        load_thresholds(path)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


# --- inputs, comparability ------------------------------------------------------------------


def write(path: Path, results) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(results.document))
    return path


@pytest.mark.parametrize(
    ("config", "kind", "reason"),
    [
        ({"poll_interval_s": 0.5}, "simulator", "poll interval differs"),
        ({"session_config": {}}, "simulator", "session config differs"),
        ({"scenario_version": 2}, "simulator", "scenario version differs"),
        ({}, "remote", "target kind differs"),
    ],
)
def test_not_comparable_is_refused_unless_forced(tmp_path, config, kind, reason):
    rng = random.Random(12)
    base = write(tmp_path / "b.json", run(rng, 50, levels=(1,)))
    cand = write(tmp_path / "c.json", run(rng, 50, levels=(1,), config=config, target_kind=kind))
    with pytest.raises(CompareError, match=reason) as info:
        compare_paths(base, cand, None)
    assert "--force" in str(info.value) and "\n" not in str(info.value)
    forced = compare_paths(base, cand, None, force=True)
    assert any(reason in note for note in forced.notes)
    assert reason in render_markdown(forced)


def test_folder_of_runs_and_bad_inputs(tmp_path):
    rng = random.Random(13)
    for i in range(2):
        write(tmp_path / "base" / f"run{i}" / "results.json", run(rng, 50, run_id=f"b{i}"))
    write(tmp_path / "cand.json", run(rng, 50, run_id="c"))
    result = compare_paths(tmp_path / "base", tmp_path / "cand.json", None)
    assert result.baseline.run_ids == ("b0", "b1")
    with pytest.raises(CompareError, match="does not exist"):
        compare_paths(tmp_path / "nope", tmp_path / "cand.json", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match=r"holds no results\.json"):
        compare_paths(tmp_path / "empty", tmp_path / "cand.json", None)
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(CompareError, match=r"candidate: results file .* is truncated"):
        compare_paths(tmp_path / "cand.json", tmp_path / "junk.json", None)


# --- outputs --------------------------------------------------------------------------------


def golden_pair():
    """Deterministic samples (no RNG), so the golden file never depends on a random stream."""

    def side(scale: float, timeouts: int, release: str):
        data = {
            level: {
                "ready": [scale * (1_000_000 + 2_000 * i * level) for i in range(400)],
                "poll": [3_000 + 7 * i for i in range(400)],
            }
            for level in (1, 2)
        }
        return synthetic_results(data, outcomes={2: {"timeout": timeouts}}, release=release,
                                 run_id=release)

    return side(1.0, 0, "v1.0"), side(1.25, 30, "v1.1")


def test_golden_markdown():
    base, cand = golden_pair()
    text = render_markdown(compare(base, cand))
    if os.environ.get("BENCH_REGEN_GOLDEN"):
        GOLDEN.write_text(text)
        pytest.fail("golden Markdown regenerated: review the diff, then rerun without the flag")
    assert text == GOLDEN.read_text(), "Markdown changed: see this module's docstring"


def test_outputs_written_and_strings_escaped(tmp_path):
    rng = random.Random(14)
    evil = "<script>alert(1)</script>|x"
    base = write(tmp_path / "b.json", run(rng, 400, run_id=evil))
    cand = write(tmp_path / "c.json", run(rng, 400, run_id="c", scale=1.5))
    result = compare_paths(base, cand, tmp_path / "out")
    page = (tmp_path / "out" / "compare.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") >= 4
    md = (tmp_path / "out" / "compare.md").read_text()
    assert md == render_markdown(result)
    assert "<script>" not in md and "\\|x" in md
    doc = orjson.loads((tmp_path / "out" / "compare.json").read_bytes())
    assert doc["format"] == "async-session-bench/compare" and doc["version"] == 1
    assert doc["regression"] is True and doc["exit_code"] == 1
    assert doc["baseline"]["releases"] == [evil]
    assert len(doc["rows"]) == len(result.rows)


# --- command line ---------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path, capsys):
    rng = random.Random(15)
    base = write(tmp_path / "b.json", run(rng, 1000, run_id="b"))
    same = write(tmp_path / "s.json", run(rng, 1000, run_id="s"))
    slow = write(tmp_path / "w.json", run(rng, 1000, run_id="w", scale=1.3))
    assert main(["compare", str(base), str(same)]) == exitcodes.OK
    assert "no regression" in capsys.readouterr().out
    assert main(["compare", str(base), str(slow), "-o", str(tmp_path / "o")]) == 1
    assert (tmp_path / "o" / "compare.html").exists()
    capsys.readouterr()
    assert main(["compare", str(base), str(tmp_path / "missing.json")]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("Error: candidate ") and err.count("\n") == 1
    bad = tmp_path / "t.toml"
    bad.write_text("alpha = 2")
    assert main(["compare", str(base), str(same), "--thresholds", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_interval_bounds_are_written_in_the_values_unit():
    from bench.present.compare import format as fmt
    from bench.present.compare.analysis import Row

    row = Row(None, "ready", "p99", "us", baseline=999_000, baseline_ci=(980_000, 1_020_400))
    assert fmt.value(row, "baseline") == "999 ms [980, 1020]"
    row = Row(None, "ready", "p99", "us", baseline=999_700, baseline_ci=(998_000, 1_001_000))
    assert fmt.value(row, "baseline") == "1 s [0.998, 1]"
    # A bound that rounds up to 1000 in the value's unit: no "1e+03".
    row = Row(None, "ready", "p99", "us", baseline=999_000, baseline_ci=(980_000, 999_600))
    assert fmt.value(row, "baseline") == "999 ms [980, 1000]"
    assert fmt.value(Row(None, "failure rate", "rate", "fraction", baseline=0.015), "baseline") == (
        "1.5 %"
    )
