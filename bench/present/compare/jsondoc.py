"""The comparison as a versioned JSON document (machine-readable twin of the Markdown)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import orjson

from bench.present.compare.analysis import Comparison, Row

FORMAT = "async-session-bench/compare"
# Format versions: 1 - first release (sides, settings, rows with values, CIs, delta,
# raw and Holm-adjusted p, verdicts; capacity at SLO per run).
VERSION = 1


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; a statistic that cannot be computed is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


def _row(row: Row) -> dict[str, Any]:
    return {k: _clean(v) for k, v in dataclasses.asdict(row).items()}


def comparison_document(comparison: Comparison) -> dict[str, Any]:
    c = comparison
    return {
        "format": FORMAT,
        "version": VERSION,
        "regression": c.regression,
        "exit_code": c.exit_code,
        "mode": c.mode,
        "min_runs_per_side": c.min_runs,
        "family_size": c.family_size,
        "settings": c.thresholds.to_json(),
        "baseline": dataclasses.asdict(c.baseline),
        "candidate": dataclasses.asdict(c.candidate),
        "notes": list(c.notes),
        "verdicts": dict(sorted(c.counts.items())),
        "rows": [_row(r) for r in c.rows],
    }


def render_json(comparison: Comparison) -> bytes:
    return orjson.dumps(comparison_document(comparison), option=orjson.OPT_INDENT_2) + b"\n"
