"""`bench simulate` as a process: start-up line, keys, loopback-only, signals, launcher errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import assert_error

from bench.cli import main
from bench.simulator.process import API_KEY_ENV, SimulatorError, SimulatorProcess
from bench.simulator.server import DEFAULT_API_KEY, LISTENING_PREFIX

SIMULATE = [sys.executable, "-m", "bench", "simulate"]


def env_without_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != API_KEY_ENV}


def test_start_announces_url_and_stops_cleanly():
    sim = SimulatorProcess("fast", api_key="k-1").start()
    try:
        assert sim.url == f"http://127.0.0.1:{sim.port}" and sim.port > 0
        assert httpx.get(sim.url + "/v1/billing", headers={"anchor-api-key": "k-1"}).is_success
    finally:
        assert sim.stop() == 0  # SIGTERM -> exit 0


def test_sigint_exits_zero_and_prints_one_line():
    with subprocess.Popen(
        [*SIMULATE, "--profile", "fast"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env_without_key(),
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith(LISTENING_PREFIX + "http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == b"" and err == b""  # exactly one line on stdout, nothing else


def test_default_key_when_env_unset():
    with subprocess.Popen(
        [*SIMULATE, "--profile", "fast"], stdout=subprocess.PIPE, env=env_without_key()
    ) as proc:
        assert proc.stdout is not None
        try:
            url = proc.stdout.readline().decode().removeprefix(LISTENING_PREFIX).strip()
            headers = {"anchor-api-key": DEFAULT_API_KEY}
            assert httpx.get(url + "/v1/billing", headers=headers).status_code == 200
        finally:
            proc.terminate()


def test_key_from_env_is_used_and_never_printed():
    secret = "s3cret-key-from-env"
    sim = SimulatorProcess("fast", api_key=secret).start()
    try:
        ok = httpx.get(sim.url + "/v1/billing", headers={"anchor-api-key": secret})
        assert ok.status_code == 200
        default = httpx.get(sim.url + "/v1/billing", headers={"anchor-api-key": DEFAULT_API_KEY})
        assert_error(default, 401)
        assert secret not in default.text
        assert secret not in sim.stderr()
    finally:
        sim.stop()


def test_custom_key_env_name():
    with subprocess.Popen(
        [*SIMULATE, "--profile", "fast", "--api-key-env", "MY_SIM_KEY"],
        stdout=subprocess.PIPE, env={**env_without_key(), "MY_SIM_KEY": "custom"},
    ) as proc:
        assert proc.stdout is not None
        try:
            url = proc.stdout.readline().decode().removeprefix(LISTENING_PREFIX).strip()
            headers = {"anchor-api-key": "custom"}
            assert httpx.get(url + "/v1/billing", headers=headers).is_success
        finally:
            proc.terminate()


def test_non_loopback_host_is_refused():
    result = subprocess.run(
        [*SIMULATE, "--host", "0.0.0.0"], capture_output=True, timeout=30, env=env_without_key()
    )
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "loopback" in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--host", "192.168.1.1"], "loopback"),
        (["--host", "example.com"], "loopback"),
        (["--port", "70000"], "--port"),
        (["--port", "x"], "--port"),
        (["--time-scale", "0"], "--time-scale"),
        (["--time-scale", "nan"], "--time-scale"),
        (["--seed", "-1"], "--seed"),
        (["--profile", "no-such-profile"], "unknown profile"),
        (["--profile", "/nonexistent/p.toml"], "cannot read profile"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_options_are_user_errors(capsys, args, needle):
    assert main(["simulate", *args], environ={}) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]


def test_empty_key_env_is_a_user_error(capsys):
    assert main(["simulate"], environ={API_KEY_ENV: ""}) == 2
    assert "is set but empty" in capsys.readouterr().err


def test_port_in_use_is_a_user_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SIMULATE, "--port", str(port)], capture_output=True, timeout=30,
            env=env_without_key(),
        )
    assert result.returncode == 2
    assert result.stderr.decode().startswith("Error: cannot serve on 127.0.0.1:")


def test_chosen_port_is_used():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SimulatorProcess("fast", api_key="k", port=port) as sim:
        assert sim.port == port


def test_early_exit_raises_with_stderr():
    with pytest.raises(SimulatorError, match=r"(?s)exited early with code 2.*unknown profile"):
        SimulatorProcess("no-such-profile", api_key="k").start()


def test_admin_endpoints_need_truth():
    with SimulatorProcess("fast", api_key="k", truth=False) as sim:
        assert_error(httpx.get(sim.url + "/_sim/truth"), 404)
        assert_error(httpx.put(sim.url + "/_sim/faults", json={}), 404)
        with pytest.raises(SimulatorError):
            sim.counters()


def test_context_manager_stops_the_child():
    with SimulatorProcess("fast", api_key="k") as sim:
        pid = sim.pid
        assert sim.alive()
    assert not sim.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _wait_gone(pid: int, within_s: float) -> bool:
    """Whether process `pid` is gone within the time (a bounded wait on its state)."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout=within_s)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_own_session_survives_the_owners_ctrl_c_and_dies_with_the_owner():
    # The owner: a process that starts the simulator, reports its pid, then waits.
    owner_code = (
        "import sys, time\n"
        "from bench.simulator.process import SimulatorProcess\n"
        "sim = SimulatorProcess('fast', api_key='k').start()\n"
        "print(sim.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", owner_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    ) as owner:  # fmt: skip
        try:
            assert owner.stdout is not None
            sim_pid = int(owner.stdout.readline())
            # A terminal's Ctrl-C reaches the owner's process group, not the simulator.
            assert os.getpgid(sim_pid) != os.getpgid(owner.pid)
            owner.kill()  # the owner dies without stopping it
            owner.wait()
            assert _wait_gone(sim_pid, within_s=10), "the simulator outlived its owner"
        finally:
            if owner.poll() is None:
                owner.kill()
