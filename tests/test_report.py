"""bench report: golden summary.md, outputs, escaping, empty runs, bad input, warnings, timeline.

Golden files: tests/fixtures/report/*.golden.md pin what people read.  After an
intended change of wording or numbers, regenerate them with

    BENCH_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/test_report.py

and review the diff before committing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import cli
from bench.analyse.capacity import SLO
from bench.core.journey import JourneyResult
from bench.core.outcomes import Outcome
from bench.present.report import build_report
from bench.present.report.data import run_data, timeline_from_samples
from bench.present.report.markdown import escape
from bench.present.report.warnings import samples_for_interval, warnings_for
from bench.record.recorder import Recorder
from bench.record.results import Results, StepInfo, build_document, dumps, load_results

FIXTURES = Path(__file__).parent / "fixtures" / "report"
FIXTURE = FIXTURES / "sim-fast-ladder.json"
GOLDEN = FIXTURES / "sim-fast-ladder.golden.md"
REGENERATE = os.environ.get("BENCH_REGENERATE_GOLDEN") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_NAMES = ("ready_percentiles", "phases", "failures", "throughput", "distribution", "calls",
              "timeline", "generator", "connect")
HOSTILE = '<script>alert("x")</script>'

RUN: dict[str, Any] = {
    "id": "report-test",
    "release": "v-test",
    "target": {"kind": "remote", "host": "https://api.example.test"},
    "started_at": "2026-01-01T00:00:00+00:00",
    "ended_at": "2026-01-01T00:01:00+00:00",
    "duration_s": 60.0,
}
CONFIG: dict[str, Any] = {"poll_interval_s": 0.25, "ladder": [1, 2], "step_time_s": 10.0,
                          "settle_s": 2.0}


def fixture_document() -> dict[str, Any]:
    return orjson.loads(FIXTURE.read_bytes())


def write(tmp_path: Path, doc: Mapping[str, Any], name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_bytes(dumps(doc))
    return path


def built(steps: Sequence[dict[str, Any]], run: Mapping[str, Any] = RUN) -> dict[str, Any]:
    """A results document from hand-described steps.

    Each step: target, busy (journey-seconds over its 10 s), ready (seconds list),
    failed (count), warmup (ready count), unobserved (phase list per ready journey).
    """
    recorder = Recorder()
    infos = []
    for index, step in enumerate(steps):
        infos.append(StepInfo(index, step["target"], 10.0 * index, 10.0 * (index + 1)))
        recorder.add_busy(index, step.get("busy", 10.0 * step["target"]))
        for value in step.get("ready", ()):
            recorder.journey_started(index, False)
            recorder.journey_finished(index, False, JourneyResult(
                Outcome.READY, {"ready": [value * 1e6], "queued": [value * 0.5e6]},
                unobserved=list(step.get("unobserved", ()))))
        for _ in range(step.get("failed", 0)):
            recorder.journey_started(index, False)
            recorder.journey_finished(index, False, JourneyResult(Outcome.FAILED))
        for _ in range(step.get("warmup", 0)):
            recorder.journey_started(index, True)
            recorder.journey_finished(index, True, JourneyResult(Outcome.READY, {"ready": [1e6]}))
    config = {**CONFIG, "ladder": [s["target"] for s in steps]}
    return build_document(run=run, config=config, steps=infos, recorder=recorder, cleanup={})


# --- golden and outputs ---------------------------------------------------------------


def test_summary_md_matches_golden(tmp_path: Path) -> None:
    build_report([FIXTURE], tmp_path)
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    if REGENERATE:
        GOLDEN.write_text(text, encoding="utf-8")
        pytest.fail("golden summary.md regenerated: review the diff, then rerun without the flag")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_build_report_writes_every_output(tmp_path: Path) -> None:
    html_path = build_report([FIXTURE], tmp_path / "out")
    assert html_path == tmp_path / "out" / "report.html"
    for name in PLOT_NAMES:
        png = (tmp_path / "out" / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE)
    assert (tmp_path / "out" / "plots" / "ready_percentiles.svg").read_bytes().startswith(b"<?xml")
    html = html_path.read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == len(PLOT_NAMES)
    # Self-contained: no script and nothing fetched from elsewhere.
    assert "<script" not in html
    assert 'src="http' not in html and "href=" not in html
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary["format"] == "async-session-bench/report-summary"
    (run,) = summary["runs"]
    assert run["capacity"] == 8 and run["knee"] is None
    assert [s["target_concurrency"] for s in run["steps"]] == [1, 2, 4, 8]
    assert run["steps"][2]["outcomes"]["failed"] == 1
    assert {w["code"] for w in run["warnings"]} >= {"few-samples", "coarse-polling"}


def test_several_results_files_make_one_report_with_a_section_each(tmp_path: Path) -> None:
    other = fixture_document()
    other["run"]["release"] = "second"
    second = write(tmp_path, other)
    html = build_report([FIXTURE, second], tmp_path / "out").read_text(encoding="utf-8")
    assert 'id="run-1"' in html and 'id="run-2"' in html
    assert (tmp_path / "out" / "plots" / "run2-timeline.png").exists()
    md = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "## demo on" in md and "## second on" in md


def test_slo_changes_the_headline(tmp_path: Path) -> None:
    build_report([FIXTURE], tmp_path, slo=SLO(ready_limit_s=0.14, failure_rate_limit=0.01))
    run = orjson.loads((tmp_path / "summary.json").read_bytes())["runs"][0]
    # p95 ready is ~0.15 s at every level in this fixture.
    assert run["capacity"] is None
    assert run["steps"][0]["slo_pass"] is False


# --- robustness -----------------------------------------------------------------------


def test_strings_from_the_target_are_escaped(tmp_path: Path) -> None:
    doc = fixture_document()
    doc["run"]["release"] = HOSTILE + " $x^$"  # $..$ would be mathtext in matplotlib
    doc["run"]["target"]["host"] = HOSTILE
    doc["run"]["target"]["kind"] = "remote"
    doc["run"]["exit_reason"] = HOSTILE
    doc["steps"][0]["measured"]["rejections"][HOSTILE] = 1
    doc["cleanup"]["left_alive"] = 1
    doc["cleanup"]["left_alive_ids"] = ['<img src=x onerror="alert(1)">']
    html = build_report([write(tmp_path, doc)], tmp_path / "out").read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    md = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "<script" not in md and "&lt;script&gt;" in md


def test_markdown_escape_is_literal_and_one_line() -> None:
    assert escape("a|b *c* <d> &\nnext") == "a\\|b \\*c\\* &lt;d&gt; &amp; next"


def test_a_run_with_zero_ready_sessions_still_renders(tmp_path: Path) -> None:
    doc = built([{"target": 1, "failed": 4}, {"target": 2, "failed": 6}])
    html = build_report([write(tmp_path, doc)], tmp_path / "out").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(PLOT_NAMES)
    assert "Capacity at SLO: none" in html
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary["runs"][0]["capacity"] is None
    assert "no-ready" in {w["code"] for w in summary["runs"][0]["warnings"]}


def test_a_run_with_no_steps_still_renders(tmp_path: Path) -> None:
    doc = built([])
    html = build_report([write(tmp_path, doc)], tmp_path / "out").read_text(encoding="utf-8")
    assert "Capacity at SLO: none" in html


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "is not JSON"),
    (b'{"format": "someone-else", "version": 1}', "is not an async-session-bench results file"),
    (b'{"format": "async-session-bench/results", "version": 99}', "newer harness"),
    (b"", "is empty"),
])
def test_bad_results_files_are_one_line_errors_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert cli.main(["report", str(bad), "-o", str(tmp_path / "out")], environ={}) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written for bad input


@pytest.mark.parametrize(("argv", "message"), [
    (["--slo-ready-p95", "0"], "--slo-ready-p95"),
    (["--slo-failure-rate", "5"], "--slo-failure-rate"),
    (["--slo-ready-p95", "nan"], "--slo-ready-p95"),
])
def test_bad_slo_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(["report", str(FIXTURE), *argv], environ={}) == 2
    assert message in capsys.readouterr().err


def test_several_files_need_an_output_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(FIXTURE), str(FIXTURE)], environ={}) == 2
    assert "-o DIR is required" in capsys.readouterr().err


def test_cli_defaults_to_the_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fixture_document())
    assert cli.main(["report", str(path)], environ={}) == 0
    assert (tmp_path / "report.html").exists()
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'report.html'}"


# --- warnings -------------------------------------------------------------------------


def codes(doc: Mapping[str, Any]) -> dict[str, str]:
    data = run_data(Results(document=doc))
    return {w.code: w.message + " | " + w.fix for w in warnings_for(data)}


def test_samples_needed_for_an_interval_match_the_stats_module() -> None:
    # bench.analyse.stats.order_statistic_ranks documents these thresholds.
    assert samples_for_interval(0.5) == 6
    assert samples_for_interval(0.99) == 368
    assert samples_for_interval(0.999) == 3688


def test_clean_run_has_no_warnings() -> None:
    steps = [{"target": 1, "ready": [2.0] * 4000}, {"target": 2, "ready": [2.0] * 4000}]
    assert codes(built(steps)) == {}


def test_each_warning_fires_with_its_fix() -> None:
    steps = [
        # 4 samples: p90/p99/p99.9 lack an interval; achieved 0.5 of 1
        {"target": 1, "busy": 5.0, "ready": [0.1] * 4, "warmup": 9,
         "unobserved": ["provisioning"]},
        {"target": 2, "ready": [0.1] * 4000},
    ]
    found = codes(built(steps))
    assert set(found) == {"few-samples", "coarse-polling", "low-concurrency",
                          "warmup-dominates"}
    assert "1 (achieved 0.5)" in found["low-concurrency"]
    assert "--processes" in found["low-concurrency"]
    assert "queued (median 50 ms" not in found["coarse-polling"]  # seconds, not ms
    assert "queued (median 0.05 s)" in found["coarse-polling"]
    assert "--poll-interval" in found["coarse-polling"]
    assert "1 (4 warm-up" not in found["warmup-dominates"]
    assert "1 (9 warm-up vs 4 measured)" in found["warmup-dominates"]


def test_many_unobserved_phases_warn() -> None:
    steps = [{"target": 1, "ready": [3.0] * 10, "unobserved": ["configuring"]}]
    found = codes(built(steps))
    assert "configuring (100%)" in found["unobserved-phases"]


def test_lost_workers_and_leaked_sessions_warn() -> None:
    doc = built([{"target": 1, "ready": [2.0] * 4000}])
    doc["run"]["workers_lost"] = ["worker-b"]
    doc["cleanup"]["left_alive"] = 2
    found = codes(doc)
    assert set(found) == {"worker-lost", "leaked-sessions"}
    assert found["worker-lost"].startswith("1 worker(s) were lost mid-run")
    assert "2 session(s)" in found["leaked-sessions"]


# --- timeline ---------------------------------------------------------------------------


def test_timeline_samples_become_rates_and_bad_samples_are_skipped() -> None:
    section = {"interval_s": 2.0, "samples": [
        {"t_s": 2.0, "step": 0, "target": 1, "users": 1, "in_flight": 1, "started": 3,
         "ready": 2, "failed": 1},
        {"t_s": 4.0, "step": 0, "target": 1, "users": 1, "in_flight": "x", "started": 1,
         "ready": 1, "failed": 0},
        "junk",
        {"t_s": 6.0, "step": 1, "target": 2, "users": 2, "in_flight": 2, "started": 4,
         "ready": 4, "failed": 0},
    ]}
    timeline = timeline_from_samples(section)
    assert timeline is not None and timeline.sampled
    assert [(p.t_s, p.target, p.ready_per_s, p.failed_per_s) for p in timeline.points] == [
        (2.0, 1, 1.0, 0.5), (6.0, 2, 2.0, 0.0)]
    for absent in (None, {}, {"interval_s": None, "samples": []}, {"samples": "x"}):
        assert timeline_from_samples(absent) is None


def test_without_samples_the_timeline_comes_from_steps_and_says_so(tmp_path: Path) -> None:
    html = build_report([FIXTURE], tmp_path).read_text(encoding="utf-8")
    assert "drawn from step boundaries" in html
    data = run_data(load_results(FIXTURE))
    assert not data.timeline.sampled
    first = data.steps[0]
    assert [p.t_s for p in data.timeline.points][:2] == [first.started_s, first.ended_s]


def test_with_samples_the_timeline_uses_them(tmp_path: Path) -> None:
    doc = copy.deepcopy(fixture_document())
    doc["timeline"] = {"interval_s": 1.0, "samples": [
        {"t_s": float(t), "step": t // 10, "target": 1, "users": 1, "in_flight": 1,
         "started": 5, "ready": 5, "failed": 0} for t in range(1, 40)]}
    path = write(tmp_path, doc)
    data = run_data(load_results(path))
    assert data.timeline.sampled and len(data.timeline.points) == 39
    html = build_report([path], tmp_path / "out").read_text(encoding="utf-8")
    assert "drawn from step boundaries" not in html


def test_target_label_names_profile_time_scale_or_host():
    from bench.present.report.data import target_label

    def run(**target):
        return {"target": target}

    assert target_label(run(kind="simulator", simulator_profile="fast", time_scale=None)) == (
        "simulator (profile fast)"
    )
    assert target_label(run(kind="simulator", simulator_profile="default", time_scale=0.1)) == (
        "simulator (profile default, time x0.1)"
    )
    assert target_label(run(kind="simulator", simulator_profile="default", time_scale=1.0)) == (
        "simulator (profile default)"
    )
    assert target_label(run(kind="remote", host="https://api.example.test")) == (
        "https://api.example.test"
    )


def test_the_timeline_shows_every_dropped_arrival() -> None:
    """Drops above the ready rate are drawn inside the axes, not clipped at its top."""
    from bench.present.report import figures

    doc = copy.deepcopy(fixture_document())
    doc["timeline"] = {"interval_s": 1.0, "samples": [
        {"t_s": float(t), "step": 0, "target": 100, "users": 100, "in_flight": 100,
         "started": 5, "ready": 5, "failed": 0, "dropped": 40 if t > 20 else 0}
        for t in range(1, 40)]}  # fmt: skip
    data = run_data(Results(document=doc))
    assert max(p.dropped_per_s for p in data.timeline.points) == 40.0
    fig = figures.timeline(data)
    bottom = fig.axes[1]
    assert bottom.get_ylim()[1] >= 40.0
    assert any("dropped" in line.get_label() for line in bottom.get_lines())
