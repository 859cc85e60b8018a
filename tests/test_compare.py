"""bench compare on synthetic results: verdicts, thresholds, inputs, outputs, CLI exit codes.

Golden Markdown: tests/fixtures/compare/golden.md.  After an intended change of the
output, regenerate it with

    BENCH_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_compare.py -k golden

and review the diff like code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from pathlib import Path

import orjson
import pytest

from bench.analyse.significance import RunEffects
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
    TOO_FEW,
    UNCHANGED,
    WITHIN_NOISE,
    WORSE,
)
from bench.present.compare.limits import parse_thresholds
from bench.present.compare.noise import NoisePrior
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


# Synthetic runs draw every sample from one fixed distribution: they have no run effect,
# so most tests here compare them with no run-to-run noise assumed (and say so).
NO_NOISE = NoisePrior(tau={}, df=math.inf, source="none (synthetic runs have no run effect)")
QUIET = Thresholds(noise=NO_NOISE)


def compare(base, cand, thresholds: Thresholds | None = None):
    b = base if isinstance(base, tuple) else (base,)
    c = cand if isinstance(cand, tuple) else (cand,)
    return compare_sides(Side("baseline", b, "b"), Side("candidate", c, "c"),
                         thresholds or QUIET)


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
    assert {r.verdict for r in result.rows} <= {UNCHANGED, NOT_SIGNIFICANT, TOO_FEW}


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
    strict = dataclasses.replace(parse_thresholds({"metrics": {"ready": {"mean": 0.03}}}),
                                 noise=NO_NOISE)
    assert row(compare(*_slower_pair(20000), strict), 1, "ready", "mean").verdict == WORSE


def _slower_pair(n: int):
    rng = random.Random(4)
    return run(rng, n, levels=(1,)), run(rng, n, levels=(1,), scale=1.05)


def test_rows_that_cannot_speak_are_too_few_samples_and_stay_out_of_holms_family():
    rng = random.Random(5)
    result = compare(run(rng, 20, levels=(1,)), run(rng, 20, levels=(1,), tail=3.0))
    # 20 samples hold no 95 % interval for p90 (29 needed) or p99 (368): not tested.
    for metric in ("ready", "provisioning"):
        for statistic in ("p90", "p99"):
            r = row(result, 1, metric, statistic)
            assert r.verdict == TOO_FEW and r.p_value is None and r.adjusted_p is None
            assert r.delta is not None and r.delta > 0.1  # the tail did move
    assert row(result, 1, "ready", "p99").baseline_ci is None
    # The family holds only the rows that were tested: mean and p50 of 3 metrics, and
    # poll's p90 (its 20 samples... no: 20 < 29, so not p90); the failure rate with no
    # failure on either side can never reach significance (Tarone) and is left out too.
    tested = [r for r in result.rows if r.adjusted_p is not None]
    assert {(r.metric, r.statistic) for r in tested} == {
        (m, s) for m in ("ready", "provisioning", "poll") for s in ("mean", "p50")}
    assert result.family_size == 6
    rate = row(result, 1, "failure rate", "rate")
    assert rate.too_few and rate.verdict == UNCHANGED
    assert "p99 at 1" in render_markdown(result)


def test_new_failure_mode_is_a_regression_when_significant():
    rng = random.Random(6)
    base = run(rng, 3000, levels=(1,))
    cand = run(rng, 3000, levels=(1,), outcomes={1: {"timeout": 40}})
    result = compare(base, cand)
    [new] = [r for r in result.rows if r.metric == "outcome:timeout"]
    assert new.verdict == NEW_FAILURE_MODE
    assert result.exit_code == exitcodes.REGRESSION
    # One timeout in 3000 is no evidence of anything, and can never be: out of the family.
    few = compare(base, run(rng, 3000, levels=(1,), outcomes={1: {"timeout": 1}}))
    assert [r.verdict for r in few.rows if r.metric == "outcome:timeout"] == [TOO_FEW]
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
    assert levels == {2, 4, None}  # None: the two matched levels together
    lonely = {(r.concurrency, r.note) for r in result.rows if r.metric == "(level)"}
    assert lonely == {(1, "measured in the baseline only"), (8, "measured in the candidate only")}
    assert all(r.verdict == NOT_COMPARABLE for r in result.rows if r.metric == "(level)")


def test_metric_missing_on_one_side_is_not_comparable():
    rng = random.Random(9)
    base = synthetic_results({1: {"ready": ready_times(rng, 50), "queued": [10.0] * 50}})
    cand = synthetic_results({1: {"ready": ready_times(rng, 50)}})
    queued = row(compare(base, cand), 1, "queued", "p50")
    assert queued.verdict == NOT_COMPARABLE and "candidate" in queued.note


def noisy_runs(rng: random.Random, count: int, tau: float, scale: float = 1.0, prefix="r"):
    """Runs whose every sample is scaled by the run's own exp(N(0, tau)): a run effect."""
    return tuple(run(rng, 100, levels=(1,), run_id=f"{prefix}{i}",
                     scale=scale * math.exp(rng.gauss(0.0, tau))) for i in range(count))


def test_repeats_measure_the_run_to_run_noise_that_single_runs_cannot():
    """Runs of one release differ by a run effect (sd 0.08 on a log scale).  Pairs of
    single runs judged with no noise assumed cry wolf; sets of 3 runs per side, whose
    noise comes from their own repeats (no prior: df ~ 0), stay within alpha + 3 sd."""
    alpha, seeds, tau = 0.05, 40, 0.08
    repeats_only = Thresholds(noise=NoisePrior(tau={}, df=1e-9, source="none"))
    limit = alpha + 3 * math.sqrt(alpha * (1 - alpha) / seeds)
    blind = with_repeats = 0
    for seed in range(seeds):
        rng = random.Random(2000 + seed)
        base, cand = noisy_runs(rng, 3, tau, prefix="b"), noisy_runs(rng, 3, tau, prefix="c")
        blind += compare(base[0], cand[0]).regression
        result = compare(base, cand, repeats_only)
        assert result.mode == "runs"
        with_repeats += result.regression
    assert with_repeats / seeds <= limit
    assert blind / seeds > limit


def test_repeats_still_find_a_real_change_and_show_the_runs_mean():
    rng = random.Random(10)
    base = noisy_runs(rng, 3, 0.02, prefix="b")
    cand = noisy_runs(rng, 3, 0.02, scale=1.3, prefix="c")
    result = compare(base, cand, Thresholds())
    p50 = row(result, 1, "ready", "p50")
    assert p50.verdict == WORSE and p50.delta == pytest.approx(0.3, abs=0.08)
    assert p50.n_baseline == 300 and p50.baseline_ci is not None
    used = next(n for n in result.noise if (n.metric, n.statistic) == ("ready", "p50"))
    assert used.repeats_tau is not None and used.repeats_df == 4
    assert "estimated from the repeats" in render_markdown(result)


def test_a_change_within_the_run_to_run_noise_is_said_so_and_exits_0():
    rng = random.Random(16)
    base, cand = run(rng, 2000, levels=(1,)), run(rng, 2000, levels=(1,), scale=1.25)
    noisy = Thresholds(noise=NoisePrior(tau={"ready": {"p50": 0.3, "mean": 0.3},
                                             "provisioning": {"p50": 0.3, "mean": 0.3}},
                                        df=30, source="test"))
    result = compare(base, cand, noisy)
    p50 = row(result, 1, "ready", "p50")
    assert p50.verdict == WITHIN_NOISE and p50.adjusted_sampling_p < 1e-6
    assert result.exit_code == exitcodes.OK
    assert row(compare(base, cand), 1, "ready", "p50").verdict == WORSE  # no noise assumed
    text = render_markdown(result)
    assert "within run-to-run noise" in text and "assumed: test" in text
    assert "| ready | \u00b135.0 % | \u00b135.0 % |" in text


def test_all_levels_rows_combine_the_levels():
    rng = random.Random(17)
    base = run(rng, 60, levels=(1, 2, 4))
    cand = run(rng, 60, levels=(1, 2, 4), scale=1.12)
    result = compare(base, cand)
    combined = row(result, None, "ready", "mean")
    assert combined.delta == pytest.approx(0.12, abs=0.04)
    assert "over 3 levels" in combined.method
    # One level's 60 samples have the larger p (the combined row sees 180 a side).
    assert combined.p_value < min(row(result, lv, "ready", "mean").p_value for lv in (1, 2, 4))


def test_run_level_false_alarm_rate_stays_below_alpha():
    """Whole comparisons of same-distribution pairs: Holm keeps P(any regression) <= alpha.

    40 seeds x ~26 tested rows, with a zero threshold so that significance alone
    decides (the harshest case); without the correction the run-level false-alarm rate
    would be far above 5 %.  Allow alpha + 3 binomial sd.
    """
    alpha, seeds = 0.05, 40
    settings = Thresholds(alpha=alpha, threshold=0.0, failure_rate=0.0, noise=NO_NOISE)
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


def test_noise_table_in_the_thresholds_file_and_its_fallbacks(tmp_path):
    from bench.present.compare.limits import load_thresholds
    from bench.present.compare.noise import DEFAULT_TAU

    path = tmp_path / "t.toml"
    path.write_text('[noise]\ndf = 11\nsource = "staging, 12 runs"\n'
                    '[noise.provisioning]\np50 = 0.08\nmean = 0.06\n')
    noise = load_thresholds(path).noise
    assert (noise.df, noise.source) == (11.0, "staging, 12 runs")
    assert noise.for_row("provisioning", "p50") == RunEffects(pytest.approx(0.0064), 11.0)
    # Values not given keep the measured defaults.
    assert noise.for_row("poll", "p50").tau == pytest.approx(DEFAULT_TAU["poll"]["p50"])
    # A statistic the table lacks takes the metric's largest tau; an unknown metric the
    # statistic's largest over every metric: never an optimistic guess.
    table = NoisePrior(tau={"ready": {"p50": 0.01, "mean": 0.02}, "poll": {"p50": 0.5},
                            "release": {"p50": 0.3, "p90": 0.1, "p99": 0.2, "mean": 0.4}},
                       df=5, source="t")
    assert table.for_row("ready", "p99").tau == pytest.approx(0.02)
    assert table.for_row("cdp_connect", "p50").tau == pytest.approx(0.5)
    assert table.for_row("cdp_connect", "p90").tau == pytest.approx(0.5)
    # A percentile is never quieter than a lower one of its metric; the mean stands alone.
    assert [table.for_row("release", s).tau for s in ("p50", "p90", "p99", "mean")] == (
        pytest.approx([0.3, 0.3, 0.3, 0.4]))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[noise]\ndf = 0", "noise.df: must be in (0"),
        ("[noise.ready]\np95 = 0.1", "noise.ready: unknown key 'p95'"),
        ("[noise.readyy]\np50 = 0.1", "noise.readyy: unknown metric"),
        ("[noise]\nsource = 3", "noise.source: expected a string"),
        ("noise = 3", "noise must be a table"),
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
    text = render_markdown(compare(base, cand, Thresholds()))  # the defaults people read
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
    assert doc["format"] == "async-session-bench/compare" and doc["version"] == 2
    assert {n["metric"] for n in doc["noise"]} == {"ready", "provisioning", "poll"}
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


def test_an_open_model_run_is_not_compared_with_a_closed_one(tmp_path):
    # Issue 13: their levels are different axes (arrival rate vs concurrency).
    rng = random.Random(3)
    closed = tmp_path / "closed.json"
    closed.write_bytes(dumps(synthetic_results({1: {"ready": ready_times(rng, 50)}}).document))
    doc = orjson.loads(closed.read_bytes())
    doc["config"]["model"] = {"kind": "open", "arrivals": "constant", "max_in_flight": 10,
                              "arrival_rates": [0.5]}  # fmt: skip
    doc["steps"][0]["arrival_rate"] = 0.5
    opened = tmp_path / "open.json"
    opened.write_bytes(dumps(doc))
    with pytest.raises(CompareError, match="load model differs"):
        compare_paths(closed, opened, None)
    # Two open runs compare, matched by arrival rate.
    result = compare_paths(opened, opened, None)
    assert {r.concurrency for r in result.rows if r.concurrency is not None} == {0.5}
