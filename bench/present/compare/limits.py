"""The thresholds file: significance level, change thresholds per metric and percentile, SLO."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.analyse.capacity import SLO
from bench.core.text import short_repr
from bench.present.compare.errors import CompareError
from bench.present.compare.noise import NoisePrior
from bench.record.userfiles import read_text

DEFAULT_ALPHA = 0.05
DEFAULT_THRESHOLD = 0.10  # relative change of a latency statistic (asv's default factor)
DEFAULT_FAILURE_RATE = 0.01  # absolute change of the failure rate (1 percentage point)

STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p99")
QUANTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
_METRIC_KEYS = frozenset({"threshold", *STATISTICS})
_SLO_KEYS = ("ready_quantile", "ready_limit_s", "failure_rate_limit")
_TOP_KEYS = frozenset({"alpha", "threshold", "failure_rate", "metrics", "slo", "noise"})
_NOISE_KEYS = ("df", "source")


@dataclass(frozen=True)
class Thresholds:
    """What counts as a change worth a verdict, and at which significance level."""

    alpha: float = DEFAULT_ALPHA
    threshold: float = DEFAULT_THRESHOLD
    failure_rate: float = DEFAULT_FAILURE_RATE
    # metric -> statistic ("threshold" for the metric's default) -> relative threshold
    metrics: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    slo: SLO = field(default_factory=SLO)
    noise: NoisePrior = field(default_factory=NoisePrior)

    def for_row(self, metric: str, statistic: str) -> float:
        """The relative change threshold of one latency row."""
        per_metric = self.metrics.get(metric, {})
        return per_metric.get(statistic, per_metric.get("threshold", self.threshold))

    def to_json(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "threshold": self.threshold,
            "failure_rate": self.failure_rate,
            "metrics": {m: dict(v) for m, v in self.metrics.items()},
            "slo": {k: getattr(self.slo, k) for k in _SLO_KEYS},
            "noise": self.noise.to_json(),
        }


def _number(value: Any, where: str, low: float, high: float, *, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CompareError(f"{where}: expected a number, got {short_repr(value, 40)}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise CompareError(f"{where}: must be in {bracket}{low:g}, {high:g}], got {value:g}")
    return float(value)


def _unknown(keys: Any, allowed: frozenset[str] | tuple[str, ...], where: str) -> None:
    extra = sorted(str(k) for k in keys if k not in allowed)
    if extra:
        allowed_text = ", ".join(sorted(allowed))
        key = short_repr(extra[0], 40)
        raise CompareError(f"{where}: unknown key {key} (allowed: {allowed_text})")


def parse_thresholds(doc: Mapping[str, Any], name: str = "thresholds") -> Thresholds:
    """Validate a parsed thresholds document strictly (pure); errors are one line."""
    _unknown(doc, _TOP_KEYS, name)
    alpha = _number(doc.get("alpha", DEFAULT_ALPHA), f"{name}: alpha", 0.0, 0.5)
    threshold = _number(doc.get("threshold", DEFAULT_THRESHOLD), f"{name}: threshold", 0.0, 10.0,
                        low_open=False)
    failure_rate = _number(
        doc.get("failure_rate", DEFAULT_FAILURE_RATE), f"{name}: failure_rate", 0.0, 1.0,
        low_open=False,
    )
    metrics_doc = doc.get("metrics", {})
    if not isinstance(metrics_doc, Mapping):
        raise CompareError(f"{name}: metrics must be a table ([metrics.NAME])")
    metrics = _per_metric(metrics_doc, f"{name}: metrics", _METRIC_KEYS, "thresholds")
    slo_doc = doc.get("slo", {})
    if not isinstance(slo_doc, Mapping):
        raise CompareError(f"{name}: slo must be a table ([slo])")
    _unknown(slo_doc, _SLO_KEYS, f"{name}: slo")
    slo_values = {
        "ready_quantile": _number(
            slo_doc.get("ready_quantile", SLO().ready_quantile), f"{name}: slo.ready_quantile",
            0.0, 0.999999,
        ),
        "ready_limit_s": _number(
            slo_doc.get("ready_limit_s", SLO().ready_limit_s), f"{name}: slo.ready_limit_s",
            0.0, 1e6,
        ),
        "failure_rate_limit": _number(
            slo_doc.get("failure_rate_limit", SLO().failure_rate_limit),
            f"{name}: slo.failure_rate_limit", 0.0, 1.0, low_open=False,
        ),
    }
    return Thresholds(
        alpha=alpha,
        threshold=threshold,
        failure_rate=failure_rate,
        metrics=MappingProxyType(metrics),
        slo=SLO(**slo_values),
        noise=_noise(doc.get("noise", {}), name),
    )


def _per_metric(
    doc: Mapping[str, Any], where: str, keys: frozenset[str], what: str
) -> dict[str, Mapping[str, float]]:
    """[<section>.METRIC] tables of numbers in [0, 10], keyed by statistic."""
    from bench.core.journey import METRICS

    out: dict[str, Mapping[str, float]] = {}
    for metric, table in doc.items():
        shown = metric if str(metric).isidentifier() else short_repr(metric, 40)
        here = f"{where}.{shown}"
        if metric not in METRICS:
            raise CompareError(f"{here}: unknown metric (known: {', '.join(METRICS)})")
        if not isinstance(table, Mapping):
            raise CompareError(f"{here}: must be a table of {what}")
        _unknown(table, tuple(sorted(keys)), here)
        out[metric] = MappingProxyType(
            {k: _number(v, f"{here}.{k}", 0.0, 10.0, low_open=False) for k, v in table.items()}
        )
    return out


def _noise(doc: Any, name: str) -> NoisePrior:
    """[noise]: run-to-run noise per metric and statistic (bench.present.compare.noise).

    Values given replace the measured defaults for those metric and statistic pairs
    only; `df` is how many degrees of freedom the whole table is worth next to repeats.
    """
    default = NoisePrior()
    if doc == {}:
        return default
    if not isinstance(doc, Mapping):
        raise CompareError(f"{name}: noise must be a table ([noise])")
    where = f"{name}: noise"
    df = _number(doc.get("df", default.df), f"{where}.df", 0.0, 1e9)
    source = doc.get("source", f"{name} (built-in defaults for the rest)")
    if not isinstance(source, str):
        raise CompareError(f"{where}.source: expected a string, got {short_repr(source, 40)}")
    tables = {k: v for k, v in doc.items() if k not in _NOISE_KEYS}
    given = _per_metric(tables, where, frozenset(STATISTICS), "relative standard deviations")
    merged = {m: dict(v) for m, v in default.tau.items()}
    for metric, values in given.items():
        merged.setdefault(metric, {}).update(values)
    tau = MappingProxyType({m: MappingProxyType(v) for m, v in merged.items()})
    return NoisePrior(tau=tau, df=df, source=source)


def load_thresholds(path: Path) -> Thresholds:
    """Read and validate a thresholds TOML file; every problem is a one-line CompareError."""
    text = read_text(path, "thresholds file", CompareError)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CompareError(f"thresholds file {path} is not valid TOML ({exc})") from None
    return parse_thresholds(doc, f"thresholds file {path}")
