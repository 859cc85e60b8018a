"""Simulator profiles: bundled ones load, overrides apply, invalid files name the bad key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.simulator.distributions import Fixed, ShiftedLogNormal, Uniform
from bench.simulator.profile import (
    ENDPOINTS,
    DialectParams,
    EndpointFaults,
    ProfileError,
    available_profiles,
    load_profile,
    profile_with_faults,
    profile_with_provisioning_scale,
)

# One bundled profile per dialect reading (tests/test_sim_dialects.py checks each).
DIALECT_PROFILES = [
    "dialect-after-end-404",
    "dialect-after-end-ready",
    "dialect-create-202",
    "dialect-cursor",
    "dialect-delete-204",
    "dialect-delete-401",
    "dialect-delete-404",
    "dialect-delete-410",
    "dialect-delete-500",
    "dialect-extra-fields",
    "dialect-late-session",
    "dialect-mix",
    "dialect-no-progress",
    "dialect-other-words",
    "dialect-paged",
    "dialect-phase-first",
    "dialect-redirect",
    "dialect-retry-date",
    "dialect-spec-words",
    "dialect-truncated",
    "dialect-unknown-phase",
    "dialect-untagged-list",
]


def test_bundled_profiles_are_listed():
    assert available_profiles() == ["chromium", "default", *DIALECT_PROFILES, "fast", "flaky"]


@pytest.mark.parametrize("name", ["chromium", "default", "fast", "flaky", *DIALECT_PROFILES])
def test_every_bundled_profile_loads(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.time_scale > 0
    assert profile.seed is None
    # Only the chromium profile runs real browsers.
    assert profile.backend.kind == ("chromium" if name == "chromium" else "model")
    assert set(profile.faults) <= set(ENDPOINTS)
    assert isinstance(profile.phases.provisioning, ShiftedLogNormal)
    assert profile.description


def test_default_is_real_time_and_fault_free():
    profile = load_profile("default")
    assert profile.time_scale == 1.0
    assert dict(profile.faults) == {}
    assert profile.dialect == DialectParams()  # today's answers, stated in default.toml
    assert profile.anomalies.unknown_status_rate == 0.0
    assert profile.capacity.max_concurrent_browsers > 10


def test_fast_has_the_default_shape_compressed():
    default, fast = load_profile("default"), load_profile("fast")
    assert fast.time_scale == pytest.approx(0.02)
    assert dataclasses.replace(fast, name="default", time_scale=1.0, description="") == (
        dataclasses.replace(default, description="")
    )


def test_flaky_misbehaves_everywhere():
    flaky = load_profile("flaky")
    assert set(flaky.faults) == set(ENDPOINTS)
    for faults in flaky.faults.values():
        assert faults.rate_429 > 0 and faults.rate_5xx > 0 and faults.rate_malformed > 0
        assert faults.rate_drop > 0 and faults.rate_slow > 0
    # The create table overrides [faults.all] only where it says so.
    assert flaky.faults["create"].rate_429 > flaky.faults["status"].rate_429
    assert flaky.faults["create"].rate_drop == flaky.faults["status"].rate_drop
    assert flaky.failures.provision_base > 0
    assert flaky.failures.capacity_400_max > 0 and flaky.failures.capacity_500_max > 0
    assert flaky.phases == load_profile("default").phases


def test_overrides():
    profile = load_profile("default", time_scale=0.1, seed=42)
    assert (profile.time_scale, profile.seed) == (0.1, 42)
    with pytest.raises(ProfileError, match="time_scale"):
        load_profile("default", time_scale=0)


def test_unknown_profile_message():
    with pytest.raises(ProfileError) as info:
        load_profile("x")
    names = ", ".join(["chromium", "default", *DIALECT_PROFILES, "fast", "flaky"])
    assert str(info.value) == f"unknown profile 'x' (available: {names})"


def write(tmp_path: Path, text: str, name: str = "p.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_load_from_path_with_extends(tmp_path):
    path = write(
        tmp_path,
        """
extends = "default"
time_scale = 0.5
seed = 7
[capacity]
max_concurrent_browsers = 3
[phases.provisioning]
dist = "fixed"
value_s = 1.5
[phases.dispatch]
dist = "uniform"
low_s = 0
high_s = 0.5
[faults.status]
rate_5xx = 0.25
""",
        name="mine.toml",
    )
    profile = load_profile(path)
    assert profile.name == "mine"
    assert (profile.time_scale, profile.seed) == (0.5, 7)
    assert profile.capacity.max_concurrent_browsers == 3
    # Keys the child does not state are inherited.
    assert profile.capacity.max_queue == load_profile("default").capacity.max_queue
    assert profile.phases.provisioning == Fixed(1.5)
    assert profile.phases.dispatch == Uniform(0.0, 0.5)
    assert dict(profile.faults) == {"status": EndpointFaults(rate_5xx=0.25)}


def test_extends_relative_path_and_cycle(tmp_path):
    write(tmp_path, 'extends = "default"\n[capacity]\nmax_concurrent_browsers = 4\n', "base.toml")
    child = write(tmp_path, 'extends = "base.toml"\nname = "kid"\n', "child.toml")
    profile = load_profile(child)
    assert (profile.name, profile.capacity.max_concurrent_browsers) == ("kid", 4)
    write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(str(tmp_path / "a.toml"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("colour = 1", "colour: unknown key"),
        ("[capacity]\nmax_slots = 3", "capacity.max_slots: unknown key"),
        ("[faults.create]\nrate_429 = 1.5", "faults.create.rate_429: must be between 0 and 1"),
        ("[faults.status]\nrate_5xx = -0.1", "faults.status.rate_5xx: must be between 0 and 1"),
        ('[faults.create]\nrate_drop = "high"', "faults.create.rate_drop: expected a number"),
        ("[faults.create]\nrate_slow = true", "faults.create.rate_slow: expected a number"),
        ("[faults.create]\nslow_s = -1", "faults.create.slow_s: must be >= 0"),
        ("[faults.create]\nbogus = 1", "faults.create.bogus: unknown key"),
        ("[faults.poll]\nrate_429 = 0.1", "faults.poll: unknown endpoint"),
        ("[failures]\nprovision_base = 2", "failures.provision_base: must be between 0 and 1"),
        ("[capacity]\nmax_concurrent_browsers = 0", "capacity.max_concurrent_browsers"),
        ("[capacity]\nmax_concurrent_browsers = 2.5", "expected an integer"),
        ("[capacity]\nmax_queue = -1", "capacity.max_queue: must be >= 0"),
        ("time_scale = 0", "time_scale: must be > 0"),
        ('time_scale = "fast"', "time_scale: expected a number"),
        ("seed = 1.5", "seed: expected an integer"),
        ("[sessions]\nidle_timeout_min = 0", "sessions.idle_timeout_min"),
        ("[sessions]\nmax_duration_min = -2", "sessions.max_duration_min"),
        ('[phases.provisioning]\ndist = "gamma"', "phases.provisioning.dist: expected one of"),
        ('[phases.configuring]\ndist = "fixed"', "phases.configuring.value_s: missing"),
        (
            '[phases.dispatch]\ndist = "uniform"\nlow_s = 1\nhigh_s = 0',
            "phases.dispatch.high_s: must be >= low_s",
        ),
        (
            '[phases.provisioning]\ndist = "fixed"\nvalue_s = -3',
            "phases.provisioning.value_s: must be a finite number >= 0",
        ),
        (
            '[phases.provisioning]\ndist = "fixed"\nvalue_s = 1\nsigma = 2',
            "phases.provisioning.sigma: unknown key",
        ),
        ('[phases.features.teleport]\ndist = "fixed"\nvalue_s = 1', "phases.features.teleport"),
        ("[phases]\nprovisioning_scale = 0", "phases.provisioning_scale: must be > 0"),
        ("[billing]\ncost_limit_exceeded = 1", "billing.cost_limit_exceeded: expected true"),
        (
            "[anomalies]\nbackwards_rate = 0.6\nunknown_status_rate = 0.6",
            "anomaly rates must add up",
        ),
        ("capacity = 3", "capacity: expected a table"),
        ("[dialect]\nshade = 1", "dialect.shade: unknown key"),
        ('[dialect]\nlist_paging = "pages"', "dialect.list_paging: expected one of none, trunc"),
        ("[dialect]\nlist_page_size = 0", "dialect.list_page_size: must be >= 1"),
        ("[dialect]\ndelete_ended_status = 418", "dialect.delete_ended_status: expected one of"),
        ("[dialect]\ndelete_unknown_status = 200", "dialect.delete_unknown_status: expected one"),
        ('[dialect]\ndelete_status = "204"', "dialect.delete_status: expected an integer"),
        ("[dialect]\ncreate_status = 204", "dialect.create_status: expected one of 200, 201"),
        ("[dialect]\ndelete_500_rate = 1.5", "dialect.delete_500_rate: must be between 0 and 1"),
        ("[dialect]\nno_progress_rate = -0.1", "dialect.no_progress_rate: must be between"),
        ("[dialect]\nphase_ready_lead_s = -1", "dialect.phase_ready_lead_s: must be >= 0"),
        ("[dialect]\nsession_lag_s = true", "dialect.session_lag_s: expected a number"),
        ('[dialect]\nstatus_after_end = "gone"', "dialect.status_after_end: expected one of"),
        ("[dialect]\nstatus_after_end = 404", "dialect.status_after_end: expected a string"),
        ('[dialect]\nretry_after_format = "date"', "dialect.retry_after_format: expected one"),
        ('[dialect]\nended_session_status = "running"', "must differ from live_session_status"),
        ('[dialect]\nlive_session_status = " "', "live_session_status: must be a non-empty"),
        ('[dialect]\nunknown_phases = ["ready"]', "'ready' is not an unknown phase word"),
        ("[dialect]\nunknown_phases = []", "dialect.unknown_phases: expected a non-empty list"),
        ('[dialect]\nforeign_tags = [""]', "dialect.foreign_tags: tags must be non-empty"),
        ("[dialect]\nforeign_sessions = -1", "dialect.foreign_sessions: must be >= 0"),
        ('[dialect]\nredirect_endpoints = ["poll"]', "redirect_endpoints: expected items among"),
        ("[dialect]\nredirect_codes = [300]", "dialect.redirect_codes: expected items among"),
        ("[dialect]\nredirect_codes = [true]", "dialect.redirect_codes: expected items among"),
        ('[dialect]\nredirect_targets = ["moon"]', "redirect_targets: expected items among"),
        ("[dialect]\nextra_fields = 1", "dialect.extra_fields: expected true or false"),
        ("dialect = 1", "dialect: expected a table"),
        ("extends = 3", "extends: expected a string"),
        ("[capacity\n", "invalid TOML"),
    ],
)
def test_strict_validation(tmp_path, text, fragment):
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(str(tmp_path / "absent.toml"))


def test_profile_with_faults():
    profile = load_profile("default")
    faulty = profile_with_faults(profile, {"create": EndpointFaults(rate_429=0.5)})
    assert faulty.faults["create"].rate_429 == 0.5
    assert dict(profile.faults) == {}
    assert faulty.phases == profile.phases
    with pytest.raises(ProfileError, match=r"faults\.poll"):
        profile_with_faults(profile, {"poll": EndpointFaults()})


def test_profile_with_provisioning_scale():
    profile = profile_with_provisioning_scale(load_profile("default"), 1.3)
    assert profile.phases.provisioning_scale == 1.3
    assert profile.phases.provisioning == load_profile("default").phases.provisioning
    with pytest.raises(ProfileError):
        profile_with_provisioning_scale(profile, 0)


def test_status_anomalies_belong_to_the_status_endpoint(tmp_path):
    ok = write(tmp_path, '[faults.status]\nrate_backwards = 0.25\nrate_completed = 0.5\n')
    faults = load_profile(ok).faults["status"]
    assert (faults.rate_backwards, faults.rate_completed, faults.rate_unknown_status) == (
        0.25, 0.5, 0.0
    )  # fmt: skip
    for text, key in (
        ("[faults.create]\nrate_backwards = 0.1\n", "faults.create.rate_backwards"),
        ("[faults.all]\nrate_completed = 0.1\n", "faults.all.rate_completed"),
        ("[faults.status]\nrate_completed = 0.6\nrate_backwards = 0.6\n", "add up"),
    ):
        with pytest.raises(ProfileError, match=key):
            load_profile(write(tmp_path, text, "bad.toml"))


def test_dialect_section_reads_every_key(tmp_path):
    path = write(
        tmp_path,
        """
extends = "fast"
[dialect]
live_session_status = "idle"
ended_session_status = "completed"
list_ended_sessions = true
list_paging = "cursor"
list_page_size = 7
ignore_tag_filter = true
foreign_sessions = 2
foreign_tags = ["other", "team-b"]
delete_status = 204
delete_ended_status = 410
delete_unknown_status = 404
delete_500_rate = 0.25
phase_ready_lead_s = 1.5
no_progress_rate = 0.5
unknown_phase_rate = 0.125
unknown_phases = ["booting"]
session_lag_s = 0.75
status_after_end = "ready"
retry_after_format = "http_date"
server_error_retry_after = true
redirect_rate = 0.5
redirect_endpoints = ["status", "delete"]
redirect_codes = [303, 308]
redirect_targets = ["other_origin"]
create_status = 201
extra_fields = true
""",
    )
    assert load_profile(path).dialect == DialectParams(
        live_session_status="idle",
        ended_session_status="completed",
        list_ended_sessions=True,
        list_paging="cursor",
        list_page_size=7,
        ignore_tag_filter=True,
        foreign_sessions=2,
        foreign_tags=("other", "team-b"),
        delete_status=204,
        delete_ended_status=410,
        delete_unknown_status=404,
        delete_500_rate=0.25,
        phase_ready_lead_s=1.5,
        no_progress_rate=0.5,
        unknown_phase_rate=0.125,
        unknown_phases=("booting",),
        session_lag_s=0.75,
        status_after_end="ready",
        retry_after_format="http_date",
        server_error_retry_after=True,
        redirect_rate=0.5,
        redirect_endpoints=("status", "delete"),
        redirect_codes=(303, 308),
        redirect_targets=("other_origin",),
        create_status=201,
        extra_fields=True,
    )


def test_dialect_profiles_extend_fast_and_change_only_their_dialect():
    fast = load_profile("fast")
    for name in DIALECT_PROFILES:
        profile = load_profile(name)
        assert profile.time_scale == fast.time_scale, name
        assert profile.description.startswith("dialect: "), name
        assert profile.dialect != DialectParams(), name
        assert (profile.phases, profile.capacity, profile.failures) == (
            fast.phases, fast.capacity, fast.failures
        ), name


def test_dialect_mix_has_every_reading_and_transient_faults():
    mix = load_profile("dialect-mix")
    d, default = mix.dialect, DialectParams()
    # Every knob differs from today's answer, except the lists that only choose among
    # readings (endpoints, codes, phase words, foreign tags).
    same = {
        f.name
        for f in dataclasses.fields(DialectParams)
        if getattr(d, f.name) == getattr(default, f.name)
    }
    assert same == {"redirect_endpoints", "redirect_codes", "unknown_phases", "foreign_tags"}
    assert set(d.redirect_targets) == {"same_origin", "other_origin"}
    for endpoint in ENDPOINTS:
        faults = mix.faults[endpoint]
        assert faults.rate_429 == 0.03 and faults.rate_5xx == 0.03 and faults.rate_drop == 0.01
