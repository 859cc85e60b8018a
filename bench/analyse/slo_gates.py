"""SLO gates: a TOML thresholds file, parsed strictly, evaluated against a results file (pure).

In the manner of k6 thresholds and Gatling assertions, a file lists limits that a
run must meet; `bench run --thresholds FILE` evaluates them after the run and
exits with THRESHOLDS_FAILED (3) when any is not met.  Three kinds:

    [[latency]]                  # a percentile limit on one metric
    metric = "ready"             # create, queued, provisioning, configuring, ready,
                                 # ready_seen, poll, release
    percentile = 95              # 0 < p <= 100, nearest rank (bench.analyse.stats)
    max = "4s"                   # a duration: "800us", "250ms", "4s", "1.5m"
    scope = "each-step"          # "each-step" (default): one check per step;
                                 # "overall": the steps in range merged
    max_concurrency = 8          # optional: only steps whose target is <= 8
    min_concurrency = 1          # optional: only steps whose target is >= 1

    [[failure_rate]]             # a failure-rate limit (bench.analyse.capacity's definition:
    outcome = "any"              # failed / decided journeys, aborted ones count on
    max = "1%"                   # neither side); outcome "any" or one failure outcome
    scope = "overall"            # default "overall"; or "each-step"
    http_status = 429            # optional, with outcome = "create_rejected" only

    [capacity]                   # minimum capacity at an SLO (bench.analyse.capacity)
    min_concurrency = 8
    ready_percentile = 95
    ready_max = "4s"
    failure_rate_max = "1%"

Everything is measured-part only: warm-up journeys are kept apart, as everywhere.
A step with no decided journeys is not evaluated (as in bench.analyse.capacity); a limit
whose range holds no evaluated step at all *fails*, because a gate that checked
nothing must not read as a pass.  A step that has decided journeys but no sample
of the metric fails its latency check ("no samples").
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.analyse.capacity import SLO, capacity_at_slo
from bench.analyse.stats import quantile
from bench.core import text
from bench.core.durations import DurationError, parse_duration
from bench.core.journey import METRICS
from bench.core.outcomes import FAILURE_OUTCOMES, failure_counts
from bench.record.recorder import new_histogram
from bench.record.results import Results, is_open_model, step_level
from bench.record.userfiles import read_text, type_name

SCOPES = ("each-step", "overall")
ANY_OUTCOME = "any"
FORMAT_VERSION = 1  # the only thresholds format so far; `version = 1` is optional in a file

_PLAIN_NUMBER = re.compile(r"^\s*[+-]?[\d.]+(?:[eE][+-]?\d+)?\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message is one line naming the key."""


# --- the parsed file --------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Which steps a limit applies to, by target concurrency (inclusive bounds)."""

    min_concurrency: int | None = None
    max_concurrency: int | None = None

    def holds(self, target: float) -> bool:
        low = self.min_concurrency is None or target >= self.min_concurrency
        high = self.max_concurrency is None or target <= self.max_concurrency
        return low and high

    def describe(self) -> str:
        lo, hi = self.min_concurrency, self.max_concurrency
        if lo is None and hi is None:
            return ""
        if lo is None:
            return f"concurrency <= {hi}"
        if hi is None:
            return f"concurrency >= {lo}"
        return f"concurrency {lo}..{hi}"


@dataclass(frozen=True)
class LatencyLimit:
    metric: str
    percentile: float  # 0 < p <= 100
    max_us: float
    scope: str
    steps: Range = Range()

    @property
    def label(self) -> str:
        return f"{self.metric} p{self.percentile:g} <= {_duration(self.max_us)}"


@dataclass(frozen=True)
class FailureRateLimit:
    outcome: str  # ANY_OUTCOME or one of FAILURE_OUTCOMES
    max_rate: float  # fraction 0..1
    scope: str
    steps: Range = Range()
    http_status: int | None = None

    @property
    def label(self) -> str:
        what = "failure rate" if self.outcome == ANY_OUTCOME else f"{self.outcome} rate"
        if self.http_status is not None:
            what = f"create_rejected {self.http_status} rate"
        return f"{what} <= {_percent(self.max_rate)}"


@dataclass(frozen=True)
class CapacityLimit:
    min_concurrency: int
    slo: SLO

    @property
    def label(self) -> str:
        return f"capacity >= {self.min_concurrency} at {self.slo.describe()}"


@dataclass(frozen=True)
class Thresholds:
    latency: tuple[LatencyLimit, ...] = ()
    failure_rate: tuple[FailureRateLimit, ...] = ()
    capacity: CapacityLimit | None = None
    source: str = "<thresholds>"

    @property
    def slo(self) -> SLO | None:
        """The capacity SLO, when the file has one (the report's headline uses it)."""
        return self.capacity.slo if self.capacity else None

    def __len__(self) -> int:
        return len(self.latency) + len(self.failure_rate) + (1 if self.capacity else 0)


# --- parsing ------------------------------------------------------------------------------


def _tname(value: Any) -> str:
    return type_name(value, mapping="a table")


class _Table:
    """One TOML table read key by key, so that every error names the key and leftovers fail."""

    def __init__(self, data: Any, where: str, allowed: Iterable[str]) -> None:
        if not isinstance(data, dict):
            raise ThresholdsError(f"{where}: expected a table, got {_tname(data)}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ThresholdsError(
                f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})"
            )
        self.data = data
        self.where = where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}"

    def required(self, name: str) -> Any:
        if name not in self.data:
            raise ThresholdsError(f"{self.where}: missing '{name}'")
        return self.data[name]

    def string(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name, default) if default is not None else self.required(name)
        if not isinstance(value, str):
            raise ThresholdsError(f"{self.key(name)}: expected a string, got {_tname(value)}")
        return value

    def choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise ThresholdsError(
                f"{self.key(name)}: {value!r} is not one of {', '.join(map(repr, choices))}"
            )
        return value

    def integer(self, name: str, *, minimum: int) -> int | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ThresholdsError(f"{self.key(name)}: expected an integer, got {_tname(value)}")
        if value < minimum:
            raise ThresholdsError(f"{self.key(name)}: must be at least {minimum}, got {value}")
        return value

    def duration_us(self, name: str) -> float:
        value = self.required(name)
        # A unit is required: a bare number in a file could mean ms or s.
        try:
            if not isinstance(value, str) or _PLAIN_NUMBER.match(value):
                raise DurationError(value)
            micros = parse_duration(value) * 1e6
        except DurationError:
            raise ThresholdsError(
                f"{self.key(name)}: expected a duration such as '4s', '250ms', '1.5m' or "
                f"'1m30s', got {value!r}"
            ) from None
        if micros <= 0:
            raise ThresholdsError(f"{self.key(name)}: must be greater than 0, got {value!r}")
        return micros

    def rate(self, name: str) -> float:
        value = self.required(name)
        match = _PERCENT.match(value) if isinstance(value, str) else None
        if match is None:
            raise ThresholdsError(
                f"{self.key(name)}: expected a percentage such as '1%' or '0.5%', got {value!r}"
            )
        percent = float(match[1])
        if percent > 100:
            raise ThresholdsError(f"{self.key(name)}: at most 100%, got {value!r}")
        return percent / 100.0

    def percentile(self, name: str) -> float:
        value = self.required(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ThresholdsError(f"{self.key(name)}: expected a number, got {_tname(value)}")
        if not (math.isfinite(value) and 0 < value <= 100):
            raise ThresholdsError(f"{self.key(name)}: must be in (0, 100], got {value}")
        return float(value)

    def steps(self) -> Range:
        low = self.integer("min_concurrency", minimum=1)
        high = self.integer("max_concurrency", minimum=1)
        if low is not None and high is not None and low > high:
            raise ThresholdsError(
                f"{self.where}: min_concurrency {low} is above max_concurrency {high}"
            )
        return Range(low, high)


_LATENCY_KEYS = ("metric", "percentile", "max", "scope", "min_concurrency", "max_concurrency")
_RATE_KEYS = ("outcome", "max", "scope", "http_status", "min_concurrency", "max_concurrency")
_CAPACITY_KEYS = ("min_concurrency", "ready_percentile", "ready_max", "failure_rate_max")


def _latency(data: Any, where: str) -> LatencyLimit:
    table = _Table(data, where, _LATENCY_KEYS)
    return LatencyLimit(
        metric=table.choice("metric", METRICS),
        percentile=table.percentile("percentile"),
        max_us=table.duration_us("max"),
        scope=table.choice("scope", SCOPES, default="each-step"),
        steps=table.steps(),
    )


def _failure_rate(data: Any, where: str) -> FailureRateLimit:
    table = _Table(data, where, _RATE_KEYS)
    outcome = table.choice("outcome", (ANY_OUTCOME, *FAILURE_OUTCOMES), default=ANY_OUTCOME)
    status = table.integer("http_status", minimum=100)
    if status is not None and (status > 599 or outcome != "create_rejected"):
        raise ThresholdsError(
            f"{table.key('http_status')}: an HTTP status 100..599, with "
            "outcome = \"create_rejected\" only"
        )
    return FailureRateLimit(
        outcome=outcome,
        max_rate=table.rate("max"),
        scope=table.choice("scope", SCOPES, default="overall"),
        steps=table.steps(),
        http_status=status,
    )


def _capacity(data: Any, where: str) -> CapacityLimit:
    table = _Table(data, where, _CAPACITY_KEYS)
    minimum = table.integer("min_concurrency", minimum=1)
    if minimum is None:
        raise ThresholdsError(f"{where}: missing 'min_concurrency'")
    percentile = table.percentile("ready_percentile")
    if percentile >= 100:
        # bench.analyse.capacity's SLO takes a quantile strictly below 1.
        raise ThresholdsError(f"{table.key('ready_percentile')}: must be below 100")
    slo = SLO(
        ready_limit_s=table.duration_us("ready_max") / 1e6,
        failure_rate_limit=table.rate("failure_rate_max"),
        ready_quantile=percentile / 100.0,
    )
    return CapacityLimit(min_concurrency=minimum, slo=slo)


def _array(doc: dict[str, Any], key: str, source: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ThresholdsError(
            f"{source}: '{key}' must be an array of tables ([[{key}]]), got {_tname(value)}"
        )
    return value


def parse_thresholds(text: str, source: str = "<thresholds>") -> Thresholds:
    """Parse and validate a thresholds document (pure); every problem is one ThresholdsError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{source}: not valid TOML ({exc})") from None
    top = _Table(doc, source, ("version", "latency", "failure_rate", "capacity"))
    version = top.integer("version", minimum=1)
    if version is not None and version != FORMAT_VERSION:
        raise ThresholdsError(
            f"{source}.version: format version {version} is not supported "
            f"(this harness reads version {FORMAT_VERSION})"
        )
    latency = tuple(
        _latency(item, f"{source}: latency[{i}]")
        for i, item in enumerate(_array(doc, "latency", source))
    )
    rates = tuple(
        _failure_rate(item, f"{source}: failure_rate[{i}]")
        for i, item in enumerate(_array(doc, "failure_rate", source))
    )
    capacity = _capacity(doc["capacity"], f"{source}: capacity") if "capacity" in doc else None
    thresholds = Thresholds(latency, rates, capacity, source)
    if not len(thresholds):
        raise ThresholdsError(
            f"{source}: no limits (add [[latency]], [[failure_rate]] or [capacity])"
        )
    return thresholds


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate a thresholds file; every problem is a one-line ThresholdsError."""
    path = Path(path)
    text = read_text(path, "thresholds file", ThresholdsError)
    return parse_thresholds(text, str(path))


# --- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One limit checked at one place (a step, or overall): what was seen and how far off."""

    limit_label: str  # e.g. "ready p95 <= 4 s"
    where: str  # e.g. "step 3 (concurrency 8)" or "overall (concurrency <= 8)"
    passed: bool
    observed: float | None  # seconds, fraction or concurrency; None when nothing to measure
    limit: float
    unit: str  # "s", "%" (values stored as fractions) or "" (a concurrency)
    # Headroom: positive when within the limit, negative by how much it was missed.
    margin: float | None
    note: str = ""

    def describe(self) -> str:
        """e.g. 'FAIL ready p95 <= 4 s, step 3 (concurrency 8): 5.2 s, over by 1.2 s (+30 %)'."""
        verdict = "pass" if self.passed else "FAIL"
        return f"{verdict} {self.limit_label}, {self.where}: {self.outcome()}"

    def outcome(self) -> str:
        if self.observed is None:
            return self.note or "nothing measured"
        seen = _value(self.observed, self.unit)
        margin = self.margin_text()
        return f"{seen}, {margin}" if margin else seen

    def margin_text(self) -> str:
        """e.g. 'over by 1.2 s (+30 %)', 'headroom 3 ms (75 %)', 'short by 4'."""
        if self.margin is None:
            return ""
        if self.unit == "":
            return f"headroom {self.margin:g}" if self.margin >= 0 else f"short by {-self.margin:g}"
        amount = _value(abs(self.margin), self.unit)
        relative = text.number(abs(self.margin) / self.limit * 100, 1.0) if self.limit > 0 else ""
        if self.margin >= 0:
            return f"headroom {amount}" + (f" ({relative} % of the limit)" if relative else "")
        return f"over by {amount}" + (f" (+{relative} %)" if relative else "")


@dataclass(frozen=True)
class Evaluation:
    checks: tuple[Check, ...]
    source: str = "<thresholds>"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


def _steps_in(results: Results, steps: Range) -> list[Mapping[str, Any]]:
    # An open-model run's steps are matched by arrival rate: its level (see step_level).
    return [s for s in results.steps if steps.holds(step_level(s))]


def _where_step(step: Mapping[str, Any]) -> str:
    return f"step {step['index'] + 1} (concurrency {step['target_concurrency']})"


def _where_overall(steps: Range) -> str:
    scope = steps.describe()
    return f"overall ({scope})" if scope else "overall"


def _decided(steps: Iterable[Mapping[str, Any]]) -> int:
    return sum(failure_counts(s["measured"]["outcomes"])[1] for s in steps)


def _nothing_in_range(label: str, steps: Range) -> Check:
    scope = steps.describe() or "the run"
    return Check(label, _where_overall(steps), False, None, 0.0, "", None,
                 note=f"no step with decided journeys in {scope}: nothing was checked")  # fmt: skip


def _latency_check(limit: LatencyLimit, results: Results, steps: list[Mapping[str, Any]],
                   where: str) -> Check:  # fmt: skip
    merged = new_histogram()
    for step in steps:
        hist = results.histogram(step["index"], limit.metric)
        if hist is not None:
            merged.add(hist)
    value = quantile(merged, limit.percentile / 100.0) if merged.get_total_count() else None
    max_s = limit.max_us / 1e6
    if value is None:
        return Check(limit.label, where, False, None, max_s, "s", None,
                     note=f"no {limit.metric} samples")  # fmt: skip
    observed = value / 1e6
    return Check(limit.label, where, value <= limit.max_us, observed, max_s, "s", max_s - observed)


def _evaluate(
    limit: LatencyLimit | FailureRateLimit,
    results: Results,
    check: Callable[[list[Mapping[str, Any]], str], Check],
) -> list[Check]:
    """`check` over the limit's steps, merged (scope "overall") or one by one."""
    # Steps with no decided journey say nothing about the target (see module docstring).
    steps = [s for s in _steps_in(results, limit.steps) if _decided([s])]
    if not steps:
        return [_nothing_in_range(limit.label, limit.steps)]
    if limit.scope == "overall":
        return [check(steps, _where_overall(limit.steps))]
    return [check([s], _where_step(s)) for s in steps]


def _rate_check(limit: FailureRateLimit, steps: list[Mapping[str, Any]], where: str) -> Check:
    decided = _decided(steps)
    if limit.http_status is not None:
        bad = sum(int(s["measured"]["rejections"].get(str(limit.http_status), 0)) for s in steps)
    elif limit.outcome == ANY_OUTCOME:
        bad = sum(failure_counts(s["measured"]["outcomes"])[0] for s in steps)
    else:
        bad = sum(int(s["measured"]["outcomes"].get(limit.outcome, 0)) for s in steps)
    rate = bad / decided
    return Check(limit.label, where, rate <= limit.max_rate, rate, limit.max_rate, "%",
                 limit.max_rate - rate, note=f"{bad} of {decided} decided journeys")  # fmt: skip


def _evaluate_capacity(limit: CapacityLimit, results: Results) -> Check:
    capacity = capacity_at_slo(results, limit.slo)
    observed = capacity.concurrency
    if observed is None:
        failing = next((v for v in capacity.steps if v.passes is False), None)
        note = "no level meets the SLO"
        if failing is not None:
            level = "arrival rate" if is_open_model(results.config) else "concurrency"
            note += f" ({level} {failing.target:g}: {failing.reason})"
        return Check(limit.label, "ladder", False, None, float(limit.min_concurrency), "",
                     None, note=note)  # fmt: skip
    margin = float(observed - limit.min_concurrency)
    return Check(limit.label, "ladder", observed >= limit.min_concurrency, float(observed),
                 float(limit.min_concurrency), "", margin)  # fmt: skip


def evaluate(thresholds: Thresholds, results: Results) -> Evaluation:
    """Check every limit against `results` (pure): one Check per limit and place."""
    checks: list[Check] = []
    for latency in thresholds.latency:
        checks.extend(_evaluate(latency, results, partial(_latency_check, latency, results)))
    for rate in thresholds.failure_rate:
        checks.extend(_evaluate(rate, results, partial(_rate_check, rate)))
    if thresholds.capacity is not None:
        checks.append(_evaluate_capacity(thresholds.capacity, results))
    return Evaluation(tuple(checks), thresholds.source)


# --- output -------------------------------------------------------------------------------


def _duration(micros: float) -> str:
    # Limits are often whole minutes in the file ("5 min"); say them back that way.
    if micros >= 60e6 and micros % 60e6 == 0:
        return f"{micros / 60e6:g} min"
    return text.duration(micros, digits=4)


def _percent(fraction: float) -> str:
    return text.percent(fraction, digits=4)


def _value(value: float, unit: str) -> str:
    if unit == "s":
        return _duration(value * 1e6)
    if unit == "%":
        return _percent(value)
    return f"{value:g}"


def format_lines(evaluation: Evaluation) -> list[str]:
    """One line per failed check, then a count line (for the console)."""
    lines = [c.describe() for c in evaluation.failures]
    total, failed = len(evaluation.checks), len(evaluation.failures)
    lines.append(
        f"thresholds: {total - failed} of {total} checks passed"
        + ("" if failed else " - all limits met")
    )
    return lines


def format_markdown(evaluation: Evaluation) -> str:
    """A Markdown section: verdict first, then every check (failures first)."""
    failed = evaluation.failures
    total = len(evaluation.checks)
    head = (
        f"**Thresholds: FAILED** - {len(failed)} of {total} checks missed their limit"
        if failed
        else f"**Thresholds: passed** - all {total} checks within their limits"
    )
    rows = ["| | limit | where | observed | margin |", "| --- | --- | --- | --- | --- |"]
    ordered = sorted(evaluation.checks, key=lambda c: c.passed)  # stable: failures first
    for c in ordered:
        observed = c.note if c.observed is None else _value(c.observed, c.unit)
        margin = c.margin_text()
        mark = "pass" if c.passed else "**FAIL**"
        rows.append(f"| {mark} | {c.limit_label} | {c.where} | {observed} | {margin} |")
    return "\n".join(
        ["## SLO thresholds", "", f"From `{evaluation.source}`.", "", head, "", *rows, ""]
    )


__all__ = [
    "CapacityLimit",
    "Check",
    "Evaluation",
    "FailureRateLimit",
    "LatencyLimit",
    "Range",
    "Thresholds",
    "ThresholdsError",
    "evaluate",
    "format_lines",
    "format_markdown",
    "load_thresholds",
    "parse_thresholds",
]
