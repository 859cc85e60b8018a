"""The simulator's [slowdown] knobs (injected changes for benchmarks/compare_calibration.py):
exact provisioning times with a one-range slowdown and a tail-only stretch; defaults inert."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from bench.simulator.distributions import Fixed, ShiftedLogNormal
from bench.simulator.model import Accepted, SessionModel
from bench.simulator.profile import (
    PhaseParams,
    Profile,
    ProfileError,
    SlowdownParams,
    load_profile,
)

START = 100.0
WALL = 1_750_000_000.0
PROV = 1.0
PROFILES = Path(__file__).resolve().parent.parent / "benchmarks" / "profiles"


def _profile(provisioning: object = Fixed(PROV), **slowdown: object) -> Profile:
    phases = PhaseParams(dispatch=Fixed(0.0), provisioning=provisioning, configuring=Fixed(0.0))
    return Profile(name="t", time_scale=1.0, seed=None, faults={}, phases=phases,
                   slowdown=SlowdownParams(**slowdown))  # type: ignore[arg-type]


def _provisioning_time(model: SessionModel, request_id: str, now: float) -> float:
    truth = model.request_truth(request_id, now)
    assert truth is not None
    times = {tr["phase"]: tr["t"] for tr in truth["transitions"]}
    return times["configuring"] - times["provisioning"]


def _create(model: SessionModel, now: float) -> str:
    result = model.create({}, now)
    assert isinstance(result, Accepted)
    return result.request_id


def test_slowdown_applies_only_within_the_in_flight_range():
    model = SessionModel(_profile(provisioning_scale=1.5, min_in_flight=2, max_in_flight=2),
                         rng=random.Random(1), start_mono=START, start_wall=WALL)
    alone = _create(model, START)  # 1 in flight (itself): unchanged
    second = _create(model, START + 5)  # the first is live and holds its slot: 2 in flight
    third = _create(model, START + 5)  # 3 in flight: above the range
    assert _provisioning_time(model, alone, START + 20) == PROV
    assert _provisioning_time(model, second, START + 20) == PROV * 1.5
    assert _provisioning_time(model, third, START + 20) == PROV


def test_tail_stretch_moves_only_draws_above_the_cut():
    dist = ShiftedLogNormal(0.5, 0.5, 0.4)
    cut = dist.quantile(0.75)
    times = {}
    for stretch in (1.0, 3.0):
        model = SessionModel(_profile(dist, tail_quantile=0.75, tail_stretch=stretch),
                             rng=random.Random(7), start_mono=START, start_wall=WALL)
        ids = [_create(model, START + 10 * i) for i in range(200)]
        times[stretch] = [_provisioning_time(model, rid, START + 3000) for rid in ids]
    # The same random stream: each draw is either left alone or stretched above the cut.
    for plain, stretched in zip(times[1.0], times[3.0], strict=True):
        expected = plain if plain <= cut else cut + (plain - cut) * 3.0
        assert stretched == pytest.approx(expected, rel=1e-12)
    assert sum(t > cut for t in times[1.0]) > 20  # the test saw the tail at all


def test_defaults_change_nothing():
    dist = ShiftedLogNormal(0.5, 0.5, 0.4)
    plain = _profile(dist)
    assert plain.slowdown == SlowdownParams()
    runs = []
    for profile in (plain, dataclasses.replace(plain, slowdown=SlowdownParams(1.0, 0, -1))):
        model = SessionModel(profile, rng=random.Random(3), start_mono=START, start_wall=WALL)
        ids = [_create(model, START) for _ in range(20)]
        runs.append([_provisioning_time(model, rid, START + 100) for rid in ids])
    assert runs[0] == runs[1]
    assert load_profile("default").slowdown == SlowdownParams()


def test_calibration_profiles_load():
    at_8 = load_profile(str(PROFILES / "calib-provisioning-20-at-8.toml")).slowdown
    assert (at_8.provisioning_scale, at_8.min_in_flight, at_8.scale_for(8), at_8.scale_for(4)) == (
        1.2, 6, 1.2, 1.0)
    tail = load_profile(str(PROFILES / "calib-tail.toml")).slowdown
    assert (tail.tail_quantile, tail.tail_stretch) == (0.75, 3.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("provisioning_scale = 0", "slowdown.provisioning_scale: must be >= 0.01"),
        ("min_in_flight = -1", "slowdown.min_in_flight: must be >= 0"),
        ("tail_quantile = 1.5", "slowdown.tail_quantile: must be between 0.01 and 1"),
        ("speed = 2", "slowdown.speed: unknown key"),
    ],
)
def test_bad_slowdown_tables_are_one_line_errors(tmp_path, table, message):
    path = tmp_path / "p.toml"
    path.write_text(f'extends = "default"\n[slowdown]\n{table}\n')
    with pytest.raises(ProfileError, match=message):
        load_profile(str(path))
