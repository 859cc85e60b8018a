"""SLO gates (bench.analyse.slo_gates): strict parsing, and evaluation on hand-built results."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analyse.slo_gates import (
    Check,
    ThresholdsError,
    evaluate,
    format_lines,
    format_markdown,
    load_thresholds,
    parse_thresholds,
)
from bench.record.recorder import Recorder
from bench.record.results import Results, StepInfo, build_document, dumps, parse_results

ROOT = Path(__file__).resolve().parent.parent


def results_of(*steps: tuple[int, dict[str, list[float]], dict[str, int]],
               rejections: dict[int, dict[str, int]] | None = None) -> Results:  # fmt: skip
    """A real results document: each step is (target, {metric: seconds}, {outcome: n})."""
    recorder = Recorder()
    infos = []
    for index, (target, samples, outcomes) in enumerate(steps):
        part = recorder.step(index).measured
        for metric, values in samples.items():
            for value in values:
                part.record(metric, value * 1e6)
        part.outcomes.update(outcomes)
        part.journeys = sum(outcomes.values())
        part.rejections.update((rejections or {}).get(index, {}))
        # Warm-up journeys must never count: give every step a slow, failing one.
        warmup = recorder.step(index).warmup
        warmup.record("ready", 3000e6)
        warmup.outcomes.update({"failed": 1})
        warmup.journeys = 1
        recorder.add_busy(index, target * 10.0)
        infos.append(StepInfo(index, target, index * 10.0, (index + 1) * 10.0))
    document = build_document(
        run={
            "id": "hand-built",
            "release": "test",
            "target": {"kind": "simulator", "host": None},
            "started_at": "2026-01-01T00:00:00.000+00:00",
            "ended_at": "2026-01-01T00:01:00.000+00:00",
            "duration_s": 60.0,
        },
        config={"poll_interval_s": 0.25, "ladder": [s[0] for s in steps], "step_time_s": 10.0,
                "settle_s": 1.0},
        steps=infos,
        recorder=recorder,
        cleanup={"left_alive": 0, "left_alive_ids": [], "ended_by_sweep": 0},
    )
    return parse_results(dumps(document), "hand-built")


def seconds(n: int, start: float = 1.0) -> list[float]:
    """n samples start, start+1, ... seconds: the p-quantile is the ceil(p*n)-th."""
    return [start + i for i in range(n)]


# Four steps: 20 ready samples of 1..20 s at concurrency 1 and 2, slower at 8, none at 16.
LADDER = results_of(
    (1, {"ready": seconds(20), "create": [0.1] * 20}, {"ready": 20}),
    (2, {"ready": seconds(20), "create": [0.2] * 20}, {"ready": 18, "failed": 1, "timeout": 1}),
    (8, {"ready": seconds(20, 10.0), "create": [0.3] * 20},
     {"ready": 16, "create_rejected": 4}),
    (16, {}, {"create_rejected": 10, "aborted": 5}),
    rejections={2: {"429": 3, "500": 1}, 3: {"429": 10}},
)  # fmt: skip


def test_the_example_file_parses():
    thresholds = load_thresholds(ROOT / "thresholds.example.toml")
    assert len(thresholds.latency) == 5 and len(thresholds.failure_rate) == 3  # both lags too
    assert thresholds.slo is not None and thresholds.slo.ready_limit_s == 4.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no limits"),
        ("[[latency]\n", "not valid TOML"),
        ("nonsense = 1\n", "unknown key 'nonsense'"),
        ("version = 2\n[[failure_rate]]\nmax = '1%'\n", "t.toml.version: format version 2"),
        ("[latency]\nmetric = 'ready'\n", "'latency' must be an array of tables"),
        ("[[latency]]\npercentile = 95\nmax = '4s'\n", "latency[0]: missing 'metric'"),
        ("[[latency]]\nmetric = 'redy'\npercentile = 95\nmax = '4s'\n",
         "latency[0].metric: 'redy' is not one of"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 0\nmax = '4s'\n",
         "latency[0].percentile: must be in (0, 100]"),
        ("[[latency]]\nmetric = 'ready'\npercentile = true\nmax = '4s'\n",
         "latency[0].percentile: expected a number, got a boolean"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = 4\n",
         "latency[0].max: expected a duration such as '4s'"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '4 hours'\n",
         "latency[0].max: expected a duration"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '0s'\n",
         "latency[0].max: must be greater than 0"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '4s'\nscope = 'all'\n",
         "latency[0].scope: 'all' is not one of"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '4s'\nmax_concurency = 8\n",
         "latency[0]: unknown key 'max_concurency'"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '4s'\n"
         "min_concurrency = 8\nmax_concurrency = 4\n",
         "latency[0]: min_concurrency 8 is above max_concurrency 4"),
        ("[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '4s'\nmax_concurrency = 0\n",
         "latency[0].max_concurrency: must be at least 1"),
        ("[[failure_rate]]\nmax = 0.01\n", "failure_rate[0].max: expected a percentage"),
        ("[[failure_rate]]\nmax = '150%'\n", "failure_rate[0].max: at most 100%"),
        ("[[failure_rate]]\noutcome = 'ready'\nmax = '1%'\n",
         "failure_rate[0].outcome: 'ready' is not one of"),
        ("[[failure_rate]]\noutcome = 'failed'\nhttp_status = 429\nmax = '1%'\n",
         "failure_rate[0].http_status: an HTTP status 100..599, with outcome"),
        ("[capacity]\nready_percentile = 95\nready_max = '4s'\nfailure_rate_max = '1%'\n",
         "capacity: missing 'min_concurrency'"),
        ("[capacity]\nmin_concurrency = 4\nready_percentile = 100\nready_max = '4s'\n"
         "failure_rate_max = '1%'\n", "capacity.ready_percentile: must be below 100"),
        ("capacity = 3\n", "capacity: expected a table, got an integer"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_in_one_line_naming_the_key(text, message):
    with pytest.raises(ThresholdsError) as error:
        parse_thresholds(text, "t.toml")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ThresholdsError, match="does not exist"):
        load_thresholds(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "micros"),
    [("800us", 800), ("250ms", 250_000), ("4s", 4e6), ("1.5m", 90e6), (" 2 s ", 2e6)],
)
def test_durations(text, micros):
    limit = parse_thresholds(f"[[latency]]\nmetric='ready'\npercentile=95\nmax='{text}'\n")
    assert limit.latency[0].max_us == pytest.approx(micros)


def test_latency_each_step_in_range_with_exact_values_and_margins():
    thresholds = parse_thresholds(
        "[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '19.5s'\nmax_concurrency = 8\n"
    )
    checks = evaluate(thresholds, LADDER).checks
    # p95 of 20 samples is the 19th: 19 s at concurrency 1 and 2, 28 s at 8 (10..29 s).
    assert [c.where for c in checks] == [
        "step 1 (concurrency 1)", "step 2 (concurrency 2)", "step 3 (concurrency 8)",
    ]  # fmt: skip
    assert [c.passed for c in checks] == [True, True, False]
    assert [c.observed for c in checks] == [pytest.approx(v, rel=1e-3) for v in (19, 19, 28)]
    assert checks[2].margin == pytest.approx(19.5 - 28, rel=1e-3)
    assert checks[2].describe() == (
        "FAIL ready p95 <= 19.5 s, step 3 (concurrency 8): 28 s, over by 8.5 s (+43.6 %)"
    )


def test_latency_overall_merges_the_steps_in_range():
    thresholds = parse_thresholds(
        "[[latency]]\nmetric = 'ready'\npercentile = 50\nmax = '10s'\nscope = 'overall'\n"
        "min_concurrency = 2\nmax_concurrency = 8\n"
    )
    (check,) = evaluate(thresholds, LADDER).checks
    # 1..20 and 10..29 merged: 40 samples; 1..9, then pairs 10,10 .. 14,14, so the
    # 20th smallest is 15 s.
    assert check.where == "overall (concurrency 2..8)"
    assert check.observed == pytest.approx(15, rel=1e-3)
    assert not check.passed and check.margin == pytest.approx(-5, abs=0.02)


def test_a_step_with_decided_journeys_but_no_samples_fails():
    thresholds = parse_thresholds(
        "[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '10m'\nmin_concurrency = 16\n"
    )
    (check,) = evaluate(thresholds, LADDER).checks
    assert not check.passed and check.observed is None
    assert check.where == "step 4 (concurrency 16)"
    assert check.describe() == "FAIL ready p95 <= 10 min, step 4 (concurrency 16): no ready samples"


def test_a_limit_that_checks_nothing_fails():
    thresholds = parse_thresholds("[[failure_rate]]\nmax = '1%'\nmin_concurrency = 32\n")
    (check,) = evaluate(thresholds, LADDER).checks
    assert not check.passed
    assert "nothing was checked" in check.describe()


def test_failure_rate_counts_decided_journeys_only():
    # Overall: failures 0 + 2 + 4 + 10 = 16 of 20 + 20 + 20 + 10 decided (aborted left out).
    ok = parse_thresholds("[[failure_rate]]\nmax = '22.86%'\n")
    (check,) = evaluate(ok, LADDER).checks
    assert check.observed == pytest.approx(16 / 70)
    assert check.passed
    assert check.note == "16 of 70 decided journeys"
    too_tight = parse_thresholds("[[failure_rate]]\nmax = '22.85%'\n")
    assert not evaluate(too_tight, LADDER).passed


def test_failure_rate_per_outcome_per_step_and_per_http_status():
    thresholds = parse_thresholds(
        "[[failure_rate]]\noutcome = 'timeout'\nmax = '5%'\nscope = 'each-step'\n"
        "[[failure_rate]]\noutcome = 'create_rejected'\nhttp_status = 429\nmax = '10%'\n"
        "scope = 'each-step'\nmax_concurrency = 8\n"
    )
    checks = evaluate(thresholds, LADDER).checks
    timeout = [c for c in checks if c.limit_label.startswith("timeout")]
    assert [c.observed for c in timeout] == [0, pytest.approx(0.05), 0, 0]
    assert all(c.passed for c in timeout)  # 5 % <= 5 %
    status = [c for c in checks if "429" in c.limit_label]
    assert [c.observed for c in status] == [0, 0, pytest.approx(3 / 20)]
    assert [c.passed for c in status] == [True, True, False]
    assert status[2].describe() == (
        "FAIL create_rejected 429 rate <= 10 %, step 3 (concurrency 8): 15 %, over by 5 % (+50 %)"
    )


def test_capacity_at_slo():
    def capacity(minimum: int, ready: str = "25s") -> Check:
        text = (
            f"[capacity]\nmin_concurrency = {minimum}\nready_percentile = 95\n"
            f"ready_max = '{ready}'\nfailure_rate_max = '10%'\n"
        )
        (check,) = evaluate(parse_thresholds(text), LADDER).checks
        return check

    # Concurrency 1 (0 %) and 2 (10 %) pass, 8 fails on its 20 % failure rate.
    assert capacity(2).passed and capacity(2).observed == 2 and capacity(2).margin == 0
    short = capacity(4)
    assert not short.passed and short.margin == -2
    assert short.describe().endswith(": 2, short by 2")
    none = capacity(1, ready="1s")
    assert not none.passed and none.observed is None
    assert "no level meets the SLO (concurrency 1: p95 ready 19 s > 1 s)" in none.describe()


def test_warm_up_journeys_never_count():
    thresholds = parse_thresholds(
        "[[latency]]\nmetric = 'ready'\npercentile = 100\nmax = '30s'\nscope = 'overall'\n"
        "[[failure_rate]]\noutcome = 'failed'\nmax = '1.43%'\n"
    )
    # The warm-up parts hold a 3000 s sample and one failure per step.
    evaluation = evaluate(thresholds, LADDER)
    assert evaluation.passed, format_lines(evaluation)


def test_output_names_the_failed_limit_first():
    thresholds = parse_thresholds(
        "[[latency]]\nmetric = 'create'\npercentile = 50\nmax = '1s'\nscope = 'overall'\n"
        "[[latency]]\nmetric = 'ready'\npercentile = 95\nmax = '1ms'\nscope = 'overall'\n",
        "gate.toml",
    )
    evaluation = evaluate(thresholds, LADDER)
    assert [c.passed for c in evaluation.checks] == [True, False]
    lines = format_lines(evaluation)
    assert lines[0].startswith("FAIL ready p95 <= 1 ms, overall: ")
    assert lines[-1] == "thresholds: 1 of 2 checks passed"
    markdown = format_markdown(evaluation)
    assert "**Thresholds: FAILED** - 1 of 2 checks missed their limit" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][2:]
    assert rows[0].startswith("| **FAIL** | ready p95 <= 1 ms | overall |")
    assert rows[1].startswith("| pass | create p50 <= 1 s | overall |")
    assert "From `gate.toml`." in markdown


def test_margin_text_keeps_small_and_large_relative_margins_readable():
    tiny = Check("ready p95 <= 4 s", "overall", True, 3.995, 4.0, "s", 0.005)
    assert tiny.margin_text() == "headroom 5 ms (0.125 % of the limit)"  # read "0 %" before
    huge = Check("ready p95 <= 1 ms", "overall", False, 12.346, 0.001, "s", 0.001 - 12.346)
    assert huge.margin_text() == "over by 12.35 s (+1234500 %)"


def test_the_generator_lag_gate_reads_the_poll_lag_metric():
    # Issue 11 (2): bench run's thresholds can gate on the generator's own lateness.
    thresholds = parse_thresholds(
        '[[latency]]\nmetric = "poll_lag"\npercentile = 99\nmax = "25ms"\nscope = "each-step"\n'
    )
    (limit,) = thresholds.latency
    assert limit.metric == "poll_lag" and limit.max_us == 25_000
