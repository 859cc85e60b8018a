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
# 2 - the run-to-run noise model: rows gain sampling_p, adjusted_sampling_p, noise,
# too_few and min_p; verdicts "within run-to-run noise" and "too few samples"; rows
# for all levels together; "noise" (per metric and statistic: tau used, prior, repeats'
# estimate) and "dispersion"; settings gain "noise"; mode is "samples" or "runs" and
# min_runs_per_side is gone.
VERSION = 2


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; a statistic that cannot be computed is null (an infinite
    # number of degrees of freedom too: "known").
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
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
        "family_size": c.family_size,
        "dispersion": c.dispersion,
        "noise": [_clean(dataclasses.asdict(n)) for n in c.noise],
        "settings": _clean(c.thresholds.to_json()),
        "baseline": dataclasses.asdict(c.baseline),
        "candidate": dataclasses.asdict(c.candidate),
        "notes": list(c.notes),
        "verdicts": dict(sorted(c.counts.items())),
        "rows": [_row(r) for r in c.rows],
    }


def render_json(comparison: Comparison) -> bytes:
    return orjson.dumps(comparison_document(comparison), option=orjson.OPT_INDENT_2) + b"\n"
