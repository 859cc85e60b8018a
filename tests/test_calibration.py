"""Calibration: the default profile reproduces the measured start-up times."""

from __future__ import annotations

import random

import pytest

from bench.calibration import fit
from bench.simulator.distributions import ShiftedLogNormal
from bench.simulator.profile import load_profile, profile_with_provisioning_scale

JOURNEYS = 4000
DOC_EXAMPLE = {
    "session": {
        "proxy": {"active": True},
        "timeout": {"idle_timeout": 5, "max_duration": 25},
        "recording": {"active": True},
    }
}


def test_measured_data_and_percentile_rule_match_the_reference_figures():
    assert len(fit.load_measured(1)) == len(fit.load_measured(10)) == 100
    assert fit.measured_percentiles(1) == {50: 1594, 90: 1866, 99: 2012}
    assert fit.measured_percentiles(10) == {50: 1723, 90: 2161, 99: 2602}


@pytest.fixture(scope="module")
def default_c1() -> dict[float, float]:
    return fit.simulated_percentiles(load_profile("default"), JOURNEYS, 1, seed=1)


def test_default_profile_matches_c1(default_c1):
    assert default_c1[50] == pytest.approx(1594, rel=0.10)
    assert default_c1[99] == pytest.approx(2012, rel=0.15)
    assert default_c1[90] == pytest.approx(1866, rel=0.10)


def test_default_profile_roughly_matches_c10():
    sim = fit.simulated_percentiles(load_profile("default"), JOURNEYS, 10, seed=1)
    assert sim[50] == pytest.approx(1723, rel=0.10)
    assert sim[90] == pytest.approx(2161, rel=0.15)
    assert sim[99] == pytest.approx(2602, rel=0.15)


def test_concurrency_slows_things_down(default_c1):
    sim = fit.simulated_percentiles(load_profile("default"), JOURNEYS, 10, seed=1)
    assert all(sim[p] > default_c1[p] for p in fit.PERCENTILES)


def test_fast_profile_is_the_default_compressed(default_c1):
    fast = fit.simulated_percentiles(load_profile("fast"), JOURNEYS, 1, seed=1)
    # Same draws, durations scaled by 0.02 and scaled back: equal up to float error.
    assert fast == pytest.approx(default_c1, rel=1e-9)


def test_slower_candidate_is_visibly_slower(default_c1):
    slower = profile_with_provisioning_scale(load_profile("default"), 1.3)
    sim = fit.simulated_percentiles(slower, JOURNEYS, 1, seed=1)
    # Provisioning is ~85% of the ready time, so the whole is 20-30% slower.
    assert 1.2 < sim[50] / default_c1[50] < 1.3


def test_doc_example_config_is_slower_than_the_default_body(default_c1):
    sim = fit.simulated_percentiles(load_profile("default"), 1000, 1, seed=1, config=DOC_EXAMPLE)
    assert sim[50] > default_c1[50] + 100


def test_fit_recovers_a_known_shifted_lognormal():
    truth = ShiftedLogNormal(1.0, 0.5, 0.3)
    rng = random.Random(3)
    samples = [truth.sample(rng) for _ in range(20000)]
    fitted = fit.fit_shifted_lognormal(samples)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert fitted.quantile(q) == pytest.approx(truth.quantile(q), rel=0.02)


def test_percentile_rule():
    values = list(range(1, 101))
    assert [fit.percentile(values, p) for p in (0, 50, 90, 99, 100)] == [1, 51, 91, 100, 100]
    with pytest.raises(ValueError):
        fit.percentile([], 50)


def test_main_prints_the_table(capsys):
    assert fit.main(["-n", "200"]) == 0
    out = capsys.readouterr().out
    assert "measured" in out and "simulated" in out
    assert "1594" in out and "2602" in out
