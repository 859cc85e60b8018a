"""Transport a paid key can be trusted with: TLS verified everywhere, no clear text, no proxy
surprise, one normalised host for every path (issue 10, finding 1, 3 and 14)."""

from __future__ import annotations

import os
import subprocess
from argparse import Namespace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from locust_runs import locust_command
from tls_proxy import tls_front

from bench.core import exitcodes
from bench.measure.harness_config import ConfigError, from_options, normalise_host, proxy_for
from bench.measure.tls import Tls
from bench.measure.transport import HttpxTransport
from bench.record.results import load_results
from bench.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "canary-key-transport-5e0c"
REMOTE = {"ANCHOR_API_KEY": KEY}


def options(**overrides) -> Namespace:
    base = dict(
        host=None, poll_interval=0.25, ladder="1", step_time=10.0, settle=1.0,
        ready_timeout=30.0, session_config=None, hold=0.0, max_sessions=5, release="r",
        results_dir=None, sim_profile="default", sim_time_scale=0.0, max_poll_errors=5,
        protocol_error_threshold=0.01,
    )  # fmt: skip
    base.update(overrides)
    return Namespace(**base)


# --- the host, once ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com//", "https://api.example.com"),
        ("HTTPS://api.example.com:8443/edge/", "https://api.example.com:8443/edge"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_the_host_is_normalised_once(given, normal):
    # Issue 10 (3): `https://x/` gave `//v1/...` on the load path, `/v1/...` in the clean-up.
    assert normalise_host(given) == normal


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("https://user:secret@api.example.com", "user name or password"),
        ("https://api.example.com/?a=1", "query or fragment"),
        ("https://api.example.com/#x", "query or fragment"),
        ("ftp://api.example.com", r"expected an http\(s\) URL"),
        ("https://api.example.com:99999", r"expected an http\(s\) URL"),
    ],
)
def test_a_host_that_cannot_be_used_as_given_is_refused(given, message):
    with pytest.raises(ConfigError, match=message) as refused:
        normalise_host(given)
    assert "secret" not in str(refused.value)  # a password in the URL is not echoed


def test_both_clients_build_the_same_paths_under_a_prefix():
    transport = HttpxTransport("https://api.example.com/edge", KEY)
    try:
        url = transport.client.build_request("GET", "/v1/sessions/async/r/status").url
    finally:
        transport.close()
    # The load path's transport prepends the prefix the same way: the same string
    # (tests/test_load_transport.py sends through it to a server under /edge).
    assert str(url) == "https://api.example.com/edge" + "/v1/sessions/async/r/status"


# --- clear text and proxies -------------------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused_unless_asked_for():
    # Issue 10 (1): the key could travel in clear text.
    with pytest.raises(ConfigError, match="clear text; use https"):
        from_options(options(host="http://api.example.com"), REMOTE)
    config = from_options(options(host="http://api.example.com", allow_http=True), REMOTE)
    assert config.host == "http://api.example.com"
    assert from_options(options(host="http://127.0.0.1:8000"), REMOTE).host  # loopback is fine


@pytest.mark.parametrize("var", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_a_proxy_the_clients_would_treat_differently_is_refused(var):
    # Issue 10 (14): httpx honoured HTTPS_PROXY, geventhttpclient did not.
    with pytest.raises(ConfigError, match="does not route its calls through proxies"):
        from_options(options(host="https://api.example.com"), {**REMOTE, var: "http://p:3128"})


def test_no_proxy_and_loopback_are_direct():
    environ = {**REMOTE, "HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".example.com"}
    assert from_options(options(host="https://api.example.com"), environ).host
    assert proxy_for("https://api.other.org", environ) == "http://p:3128"
    environ = {**REMOTE, "HTTP_PROXY": "http://p:3128"}
    assert from_options(options(host="http://127.0.0.1:9"), environ).host


def test_the_clean_up_client_ignores_proxy_variables(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    transport = HttpxTransport("https://api.example.com", KEY)
    try:
        assert transport.client._trust_env is False
        assert not transport.client._mounts  # no proxy transport mounted
    finally:
        transport.close()


# --- TLS options ------------------------------------------------------------------------------


def test_tls_is_verified_by_default():
    config = from_options(options(host="https://api.example.com"), REMOTE)
    assert config.tls == Tls(verify=True, ca_pem=None)
    assert config.tls.context().verify_mode.name == "CERT_REQUIRED"


def test_ca_bundle_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="--ca-bundle: cannot read"):
        from_options(options(ca_bundle=str(tmp_path / "missing.pem")), {})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"--ca-bundle: .*junk\.pem"):
        from_options(options(ca_bundle=str(junk)), {})
    with pytest.raises(ConfigError, match="exclude each other"):
        from_options(options(ca_bundle=str(junk), insecure=True), {})


# --- real runs against a TLS front with a certificate nobody vouches for ------------------------



def _run(host: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        locust_command(
            "--headless", "--only-summary", "--host", host, "--ladder", "2", "--step-time", "2",
            "--settle", "0.2", "--poll-interval", "0.01", "--ready-timeout", "5", "--no-report",
            "--results-dir", str(out), *extra,
        ),
        cwd=ROOT, env={**os.environ, **REMOTE}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def sim():
    with SimulatorProcess("fast", seed=3, truth=True, api_key=KEY) as sim:
        yield sim


@pytest.mark.slow
def test_an_unverifiable_certificate_gets_no_key(sim, tmp_path):
    # Issue 10 (1): the load path did not verify certificates: the key went to any server.
    with tls_front(urlsplit(sim.url).port, tmp_path) as front:
        proc = _run(front.url, tmp_path / "run")
        assert proc.returncode == exitcodes.TARGET_UNREACHABLE, proc.stderr[-2000:]
        assert front.handshakes == 0 and front.failed_handshakes > 0
        assert KEY.encode() not in bytes(front.seen)
    assert sim.counters()["creates_accepted"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("trust", ["ca-bundle", "insecure"])
def test_a_trusted_certificate_runs_clean_on_every_path(trust, sim, tmp_path):
    with tls_front(urlsplit(sim.url).port, tmp_path) as front:
        extra = ["--ca-bundle", str(front.ca_file)] if trust == "ca-bundle" else ["--insecure"]
        proc = _run(front.url + "/", tmp_path / "run", *extra)  # a trailing slash too (3)
        assert proc.returncode == exitcodes.OK, proc.stderr[-2000:]
        assert front.handshakes > 0
    doc = load_results(tmp_path / "run" / "results.json").document
    # The clean-up (httpx) reached the target by the same trust: its sweep listed the tag.
    assert doc["cleanup"]["sweep_ok"] and doc["cleanup"]["leaked"] == 0
    assert doc["totals"]["outcomes"]["ready"] > 0
    counters = sim.counters()
    assert counters["live_sessions"] == 0
    assert doc["run"]["target"]["host"] == front.url  # normalised: no trailing slash
