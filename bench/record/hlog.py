"""Export results as HdrHistogram interval logs (.hlog): one file per metric, one interval per step.

The files follow the format of HdrHistogram's Java HistogramLogWriter (log format
1.3), so HistogramLogAnalyzer, HistogramLogProcessor and hdrh's HistogramLogReader
read them:

    #[Histogram log format version 1.3]
    #[StartTime: <run start, s since epoch> (seconds since epoch), <date>]
    #[BaseTime: <run start> (seconds since epoch)]
    #[<what the file holds>]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    <start>,<length>,<max>,<HISTFAAA...>

Timestamps are seconds since the run started (BaseTime = StartTime), so an
interval's StartTimestamp is its step's ``started_s`` and Interval_Length its
``duration_s``.  Histogram values are microseconds; Interval_Max is divided by a
max-value unit ratio of 1e6, so it reads in seconds.  Only the measured part of
each step is logged: the warm-up stays in the results file, because tools that sum
a log's intervals would otherwise mix it in.  hdrh's own writer is not used: its
StartTime line raises (it calls a nonexistent ``iso_format``) and it floors
Interval_Max to whole units.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bench
from bench.core.journey import METRICS
from bench.record.recorder import decode_histogram, encode_histogram, new_histogram
from bench.record.results import Results, _write_atomic

LOG_FORMAT_VERSION = "1.3"
MAX_VALUE_UNIT_RATIO = 1_000_000.0  # microseconds -> seconds for Interval_Max
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'

# Java's Date.toString() names, spelled out so the system locale cannot change them.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _java_date(stamp: dt.datetime) -> str:
    stamp = stamp.astimezone(dt.UTC)
    return (
        f"{_DAYS[stamp.weekday()]} {_MONTHS[stamp.month - 1]} {stamp.day:02d} "
        f"{stamp:%H:%M:%S} UTC {stamp.year}"
    )


def format_hlog(document: Mapping[str, Any], metric: str) -> str:
    """The text of `metric`'s interval log (pure)."""
    run = document["run"]
    # The comment must stay one line whatever the labels hold.
    run_id, release = (" ".join(str(run[k]).split()) for k in ("id", "release"))
    started = dt.datetime.fromisoformat(run["started_at"])
    epoch = started.timestamp()
    lines = [
        f"#[Histogram log format version {LOG_FORMAT_VERSION}]",
        f"#[StartTime: {epoch:.3f} (seconds since epoch), {_java_date(started)}]",
        f"#[BaseTime: {epoch:.3f} (seconds since epoch)]",
        f"#[async-session-bench {bench.__version__}: run {run_id}, release {release}, "
        f"metric {metric} (measured journeys); values in microseconds, "
        f"Interval_Max in seconds]",
        LEGEND,
    ]
    for step in document["steps"]:
        blob = step["measured"]["histograms"].get(metric)
        if blob is None:
            # An empty interval keeps the timeline whole: the step ran, nothing landed.
            blob = encode_histogram(new_histogram())
            max_value = 0
        else:
            max_value = decode_histogram(blob).get_max_value()
        lines.append(
            f"{step['started_s']:.3f},{step['duration_s']:.3f},"
            f"{max_value / MAX_VALUE_UNIT_RATIO:.3f},{blob}"
        )
    return "\n".join(lines) + "\n"


def write_hlogs(
    directory: str | os.PathLike[str], document: Mapping[str, Any] | Results
) -> list[Path]:
    """Write ``<metric>.hlog`` into `directory` for each metric any step recorded.

    Returns the paths in METRICS order (then any other metric, sorted).  Each file
    is written atomically; the directory is created if needed.
    """
    doc = document.document if isinstance(document, Results) else document
    recorded = {m for step in doc["steps"] for m in step["measured"]["histograms"]}
    metrics = [m for m in METRICS if m in recorded] + sorted(recorded - set(METRICS))
    out = Path(directory)
    paths = []
    for metric in metrics:
        if not _SAFE_NAME.match(metric):
            raise ValueError(f"metric name {metric!r} cannot be a file name")
        path = out / f"{metric}.hlog"
        _write_atomic(path, format_hlog(doc, metric).encode("utf-8"))
        paths.append(path)
    return paths


__all__ = ["MAX_VALUE_UNIT_RATIO", "format_hlog", "write_hlogs"]
