"""How many real browsers this machine holds: start-up time, memory and CPU per browser.

Runs `bench simulate` with the chromium profile (capacity unlimited, no expiry) and
drives it through the API like the harness would:

1. one session at a time (--sequential N): the browser's start-up (launch to its
   /json/version answer, from the simulator's truth), then a connect check through the
   real browser (bench.measure.cdp_client, navigating to the simulator's /_sim/page):
   connect, first command and navigation times;
2. N sessions created at once for each N in --levels: start-up under N concurrent starts,
   the memory (PSS, shared pages split fairly) of the simulator's browsers per browser,
   and their CPU per idle browser over --idle seconds.

Prints the figures and the capacity they suggest.  Traffic stays on loopback.

    .venv/bin/python benchmarks/chromium_capacity.py --sequential 20 --levels 1,2,4,8,16
"""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.measure.cdp_client import connect_check
from bench.simulator.process import SimulatorProcess

KEY = "capacity-bench"
FOREVER = {"timeout": {"idle_timeout": -1, "max_duration": -1}}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * (len(ordered) - 1)))]


def create(api: httpx.Client) -> str:
    response = api.post("/v1/sessions/async", json={"session": FOREVER})
    response.raise_for_status()
    return response.json()["data"]["request_id"]


def wait_ready(api: httpx.Client, request_ids: list[str], limit_s: float = 120) -> dict[str, dict]:
    done: dict[str, dict] = {}
    end = time.monotonic() + limit_s
    while len(done) < len(request_ids):
        for rid in request_ids:
            if rid in done:
                continue
            data = api.get(f"/v1/sessions/async/{rid}/status").json()["data"]
            if data["status"] not in ("pending", "processing"):
                if data["status"] != "ready":
                    raise SystemExit(f"request {rid} ended {data['status']}")
                done[rid] = data
        if time.monotonic() > end:
            raise SystemExit("sessions not ready in time")
        time.sleep(0.02)
    return done


def browsers_of(sim: SimulatorProcess) -> list[psutil.Process]:
    return [p for p in psutil.Process(sim.pid).children(recursive=True) if "chrom" in p.name()]


def pss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_full_info().pss
    return total / 2**20


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def end_all(api: httpx.Client, sim: SimulatorProcess) -> None:
    api.delete("/v1/sessions/all").raise_for_status()
    end = time.monotonic() + 60
    while sim.counters()["browsers"]["alive"] > 0:
        if time.monotonic() > end:
            raise SystemExit("browsers still alive after DELETE all")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="capbench-"))
    profile = folder / "chromium-unlimited.toml"
    profile.write_text('extends = "chromium"\ntime_scale = 0.02\n'
                       "[capacity]\nmax_concurrent_browsers = -1\n", encoding="utf-8")
    available_mb = psutil.virtual_memory().available / 2**20
    with SimulatorProcess(str(profile), seed=1, truth=True, api_key=KEY) as sim, httpx.Client(
        base_url=sim.url, headers={"anchor-api-key": KEY}, timeout=60
    ) as api:
        page = sim.url + "/_sim/page"
        startups, connects, firsts, navigates = [], [], [], []
        for _ in range(args.sequential):
            rid = create(api)
            data = wait_ready(api, [rid])[rid]
            startups.append(sim.truth()["browsers"][rid]["startup_s"])
            result = connect_check(data["session"]["cdp_url"], navigate_url=page, timeout=30)
            if not result.ok:
                raise SystemExit(f"connect check failed: {result.error} {result.cause}")
            connects.append(result.connect_s)
            firsts.append(result.first_command_s)
            navigates.append(result.navigate_s)
            end_all(api, sim)
        print(f"sequential: {args.sequential} browsers, one at a time")
        for name, values in (("start-up", startups), ("connect", connects),
                             ("first command", firsts), ("navigate", navigates)):
            print(f"  {name:14} p50 {pct(values, 50) * 1000:7.1f} ms   "
                  f"p99 {pct(values, 99) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms")
        print(f"\nconcurrent starts (memory available at start: {available_mb:,.0f} MB)")
        print(f"  {'N':>3}  {'start-up p50':>12}  {'p99':>8}  {'PSS/browser':>11}  "
              f"{'idle CPU/browser':>16}")
        per_browser_mb: list[float] = []
        for level in (int(x) for x in args.levels.split(",")):
            rids = [create(api) for _ in range(level)]
            wait_ready(api, rids)
            truth = sim.truth()["browsers"]
            times = [truth[rid]["startup_s"] for rid in rids]
            time.sleep(args.settle)  # start-up work settles before the idle state is measured
            procs = browsers_of(sim)
            memory = pss_mb(procs) / level
            per_browser_mb.append(memory)
            before = cpu_seconds(procs)
            time.sleep(args.idle)
            cpu = (cpu_seconds(procs) - before) / args.idle / level * 100
            print(f"  {level:>3}  {pct(times, 50) * 1000:9.0f} ms  {pct(times, 99) * 1000:5.0f} ms"
                  f"  {memory:8.0f} MB  {cpu:14.2f} %")
            end_all(api, sim)
        memory = max(per_browser_mb)
        print(f"\nmemory bound: {available_mb / memory:,.0f} idle browsers in the available "
              f"memory ({memory:.0f} MB each), {available_mb / 2 / memory:,.0f} in half of it")


if __name__ == "__main__":
    main()
