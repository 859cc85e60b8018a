"""Run-to-run noise a comparison assumes when its own runs cannot measure it (a prior).

Two runs of one release differ by more than their samples' scatter: the machine,
its other processes, a provider's other tenants change between runs.  That run
effect has a standard deviation tau on the log scale of each statistic (about a
relative sd: tau 0.05 is about +-5 %).  A comparison with repeats estimates tau
from them (bench.analyse.significance); this module holds what is assumed
otherwise, and the weight that assumption keeps next to the repeats:

* the defaults below, measured on real runs (see MEASURED); or
* a `[noise]` table in the thresholds file (bench.present.compare.limits), for
  another machine or a real provider, e.g. from `benchmarks/compare_calibration.py
  noise` on your own repeated runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bench.analyse.significance import RunEffects

# tau per metric and statistic, measured: the DerSimonian-Laird moment estimate over
# same-release runs of the CI ladder (their spread beyond each run's sampling
# variance), at each of the 4 levels from the runs that can estimate it there, the
# largest level's kept (the loopback calls' noise differs by level, up to 3x).  A
# statistic no run could estimate (p99 at 6-44 journeys a level) is absent; `_lookup`
# says what stands in for it.
MEASURED = (
    "24 runs of the default simulator profile (ladder 1,2,4,8 x 15 s, settle 3 s) on "
    "the project's shared 2-core VM, 2026-11-30 12:03-13:01 UTC; "
    "benchmarks/compare_calibration.py noise"
)
_TABLE: dict[str, dict[str, float]] = {
    "configuring": {"mean": 0.0374, "p50": 0.142, "p90": 0.0779},
    "create": {"mean": 0.5063, "p50": 0.3342, "p90": 0.6287},
    "poll": {"mean": 0.5244, "p50": 0.5913, "p90": 0.5409, "p99": 0.2831},
    "provisioning": {"mean": 0.0203, "p50": 0.0, "p90": 0.0087},
    "queued": {"mean": 0.0584, "p50": 0.2067, "p90": 0.0},
    "ready": {"mean": 0.0143, "p50": 0.0052, "p90": 0.0},
    "ready_seen": {"mean": 0.0138, "p50": 0.0069, "p90": 0.0},
    "release": {"mean": 0.641, "p50": 0.409, "p90": 0.8546},
}
DEFAULT_TAU: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {metric: MappingProxyType(per) for metric, per in _TABLE.items()}
)
DEFAULT_DF = 23.0  # runs - 1: the levels of a run share its mood, so they add no df


_QUANTILES = ("p50", "p90", "p99")


def _lookup(metric: str, statistic: str, table: Mapping[str, Mapping[str, float]]) -> float:
    """tau of a metric and statistic; never an optimistic guess where the table is thin.

    * A percentile is never assumed quieter than a lower percentile of the same metric
      (tau of p99 >= tau of p90 >= tau of p50): the rare stalls of a shared machine
      reach the tail first, and a tail's tau rests on few runs and levels (p99 only at
      concurrency 8 on the CI ladder).  Without this rule, one run taken during a load
      spike put `poll` p99 20x above the others and read as a regression in 23 of its
      144 pairs (docs/compare.md).
    * A statistic the table lacks for a metric (p99 needs 368 samples per level in every
      run) takes the largest tau measured for that metric.
    * A metric the table does not know takes the largest tau of that statistic over the
      metrics it knows (or, at worst, of anything).
    """
    per = table.get(metric)
    if per:
        if statistic not in per:
            return max(per.values())
        if statistic in _QUANTILES:
            lower = _QUANTILES[: _QUANTILES.index(statistic) + 1]
            return max(per[q] for q in lower if q in per)
        return per[statistic]
    same = [_lookup(m, statistic, table) for m, p in table.items() if p]
    return max(same or [0.0])


@dataclass(frozen=True)
class NoisePrior:
    """tau assumed per metric and statistic, worth `df` degrees of freedom next to repeats."""

    tau: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_TAU)
    df: float = DEFAULT_DF
    source: str = MEASURED

    def for_row(self, metric: str, statistic: str) -> RunEffects:
        tau = _lookup(metric, statistic, self.tau)
        return RunEffects(tau * tau, self.df)

    def to_json(self) -> dict[str, object]:
        return {"df": self.df, "source": self.source,
                "tau": {m: dict(v) for m, v in self.tau.items()}}


__all__ = ["DEFAULT_DF", "DEFAULT_TAU", "MEASURED", "NoisePrior"]
