"""Duration distributions for the simulator: parsed from profile tables, sampled by an rng."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

_STD_NORMAL = NormalDist()


class DistributionError(ValueError):
    """A distribution table is malformed; the message names the offending key path."""


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same duration: for tests that need exact timing."""

    value_s: float

    @property
    def floor_s(self) -> float:
        return self.value_s

    def sample(self, rng: random.Random) -> float:
        # No draw at all, so swapping a Fixed in never shifts the rng stream of
        # anything else (keeps seeded runs comparable).
        return self.value_s

    def quantile(self, q: float) -> float:
        return self.value_s

    def mean(self) -> float:
        return self.value_s


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low_s, high_s]: small jitters (dispatch) where shape hardly matters."""

    low_s: float
    high_s: float

    @property
    def floor_s(self) -> float:
        return self.low_s

    def sample(self, rng: random.Random) -> float:
        return self.low_s + (self.high_s - self.low_s) * rng.random()

    def quantile(self, q: float) -> float:
        return self.low_s + (self.high_s - self.low_s) * q

    def mean(self) -> float:
        return (self.low_s + self.high_s) / 2


@dataclass(frozen=True, slots=True)
class ShiftedLogNormal:
    """shift_s + LogNormal(ln median_s, sigma), optionally capped at max_s.

    The shift is the irreducible cost (a pod cannot boot faster than its image
    allows); the lognormal part is the right-skewed wait that start-up times show
    in the measurements (min 1.40 s, p50 1.59 s, long thin tail).
    """

    shift_s: float
    median_s: float
    sigma: float
    max_s: float | None = None

    @property
    def floor_s(self) -> float:
        return self.shift_s

    def sample(self, rng: random.Random) -> float:
        if self.median_s == 0:
            return self.shift_s
        value = self.shift_s + self.median_s * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return value if self.max_s is None else min(value, self.max_s)

    def quantile(self, q: float) -> float:
        if self.median_s == 0 or q == 0.5:
            value = self.shift_s + self.median_s
        else:
            value = self.shift_s + self.median_s * math.exp(self.sigma * _STD_NORMAL.inv_cdf(q))
        return value if self.max_s is None else min(value, self.max_s)

    def mean(self) -> float:
        # Uncapped mean; only used for documentation and calibration estimates.
        return self.shift_s + self.median_s * math.exp(self.sigma**2 / 2)


Distribution = Fixed | Uniform | ShiftedLogNormal

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind -> (required keys, optional keys)
    "fixed": (("value_s",), ()),
    "uniform": (("low_s", "high_s"), ()),
    "shifted_lognormal": (("shift_s", "median_s", "sigma"), ("max_s",)),
}


def _number(table: Mapping[str, object], key: str, where: str) -> float:
    value = table[key]
    # bool is an int subclass; `true` where a duration belongs is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DistributionError(f"{where}.{key}: expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise DistributionError(f"{where}.{key}: must be a finite number >= 0, got {value!r}")
    return float(value)


def parse_distribution(table: object, where: str) -> Distribution:
    """Build a distribution from a profile table such as {dist="uniform", low_s=0, high_s=1}."""
    if not isinstance(table, Mapping):
        raise DistributionError(f"{where}: expected a table, got {table!r}")
    kind = table.get("dist")
    if kind not in _KEYS:
        raise DistributionError(
            f"{where}.dist: expected one of {', '.join(sorted(_KEYS))}, got {kind!r}"
        )
    required, optional = _KEYS[kind]
    for key in table:
        if key != "dist" and key not in required and key not in optional:
            raise DistributionError(f"{where}.{key}: unknown key for dist {kind!r}")
    for key in required:
        if key not in table:
            raise DistributionError(f"{where}.{key}: missing (required for dist {kind!r})")
    values = {key: _number(table, key, where) for key in (*required, *optional) if key in table}
    if kind == "fixed":
        return Fixed(values["value_s"])
    if kind == "uniform":
        if values["high_s"] < values["low_s"]:
            raise DistributionError(f"{where}.high_s: must be >= low_s")
        return Uniform(values["low_s"], values["high_s"])
    dist = ShiftedLogNormal(
        values["shift_s"], values["median_s"], values["sigma"], values.get("max_s")
    )
    if dist.max_s is not None and dist.max_s < dist.shift_s:
        raise DistributionError(f"{where}.max_s: must be >= shift_s")
    return dist
