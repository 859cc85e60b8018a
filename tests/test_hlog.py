"""HDR interval logs: standard header, one interval per step, read back by hdrh's own reader."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest
from hdrh.log import HistogramLogReader

from bench.core.journey import METRICS
from bench.record.hlog import LEGEND, MAX_VALUE_UNIT_RATIO, format_hlog, write_hlogs
from bench.record.recorder import new_histogram
from bench.record.results import dumps, parse_results

sys.path.insert(0, str(Path(__file__).parent))
from test_results import make_document, make_small_document

RUN_START = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC).timestamp()


def read_intervals(path: Path) -> list:
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        intervals = []
        while (hist := reader.get_next_interval_histogram()) is not None:
            intervals.append(hist)
        assert reader.get_start_time_sec() == pytest.approx(RUN_START)
        return intervals
    finally:
        reader.close()


def test_one_file_per_recorded_metric(tmp_path):
    paths = write_hlogs(tmp_path / "hlog", make_document())
    assert [p.name for p in paths] == [f"{m}.hlog" for m in METRICS]
    assert sorted(p.name for p in (tmp_path / "hlog").iterdir()) == sorted(p.name for p in paths)


def test_only_metrics_with_samples_get_a_file(tmp_path):
    paths = write_hlogs(tmp_path, make_small_document())
    assert [p.name for p in paths] == ["create.hlog", "ready.hlog"]


def test_files_begin_with_the_standard_header(tmp_path):
    for path in write_hlogs(tmp_path, make_document()):
        lines = path.read_text().splitlines()
        assert lines[0] == "#[Histogram log format version 1.3]"
        assert re.fullmatch(
            r"#\[StartTime: 1795939200\.000 \(seconds since epoch\), "
            r"Sun Nov 29 08:00:00 UTC 2026\]",
            lines[1],
        )
        assert lines[2] == "#[BaseTime: 1795939200.000 (seconds since epoch)]"
        assert lines[3].startswith("#[") and "microseconds" in lines[3]
        assert lines[4] == LEGEND
        assert LEGEND == (
            '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
        )
        assert len(lines) == 5 + 3  # one interval per step
        for line in lines[5:]:
            assert re.fullmatch(r"\d+\.\d{3},\d+\.\d{3},\d+\.\d{3},HISTF\S+", line)


def test_reader_gets_identical_counts_and_step_timing(tmp_path):
    doc = make_document()
    loaded = parse_results(dumps(doc))
    for path in write_hlogs(tmp_path, loaded):
        metric = path.stem
        intervals = read_intervals(path)
        assert len(intervals) == len(loaded.steps)
        for hist, step in zip(intervals, loaded.steps, strict=True):
            want = loaded.histogram(step["index"], metric)
            assert hist.get_total_count() == want.get_total_count()
            assert list(hist.counts) == list(want.counts)
            # Start/end come back as absolute epoch milliseconds.
            assert hist.get_start_time_stamp() == pytest.approx(
                (RUN_START + step["started_s"]) * 1000
            )
            assert hist.get_end_time_stamp() == pytest.approx((RUN_START + step["ended_s"]) * 1000)


def test_interval_max_reads_in_seconds():
    doc = make_small_document()
    text = format_hlog(doc, "ready")
    rows = [line.split(",") for line in text.splitlines() if line[0].isdigit()]
    loaded = parse_results(dumps(doc))
    for row, step in zip(rows, loaded.steps, strict=True):
        max_us = loaded.histogram(step["index"], "ready").get_max_value()
        assert row[2] == f"{max_us / MAX_VALUE_UNIT_RATIO:.3f}"
    assert rows[0][2] == "1.401"  # 1.4 s, within HDR's 0.1 %


def test_steps_without_the_metric_get_an_empty_interval(tmp_path):
    doc = make_small_document()
    del doc["steps"][1]["measured"]["histograms"]["create"]
    path = next(p for p in write_hlogs(tmp_path, doc) if p.stem == "create")
    counts = [h.get_total_count() for h in read_intervals(path)]
    assert counts == [3, 0]
    assert path.read_text().splitlines()[-1].startswith("10.000,10.000,0.000,HISTF")


def test_unsafe_metric_names_are_refused(tmp_path):
    doc = make_small_document()
    hists = doc["steps"][0]["measured"]["histograms"]
    hists["../escape"] = hists["ready"]
    with pytest.raises(ValueError, match="cannot be a file name"):
        write_hlogs(tmp_path, doc)
